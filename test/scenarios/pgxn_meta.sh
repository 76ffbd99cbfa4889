#!/bin/sh
# META.json is a valid PGXN distribution description (PGXN Meta Spec
# v1.0.0: the required keys, their types, semantic versions, the license
# and release status words, prereq phases and relations) and names the
# version this server installs by default.
set -eu
cd "$(dirname "$0")/../.."
default=$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT default_version FROM pg_available_extensions WHERE name = 'billing'")
/usr/bin/python3 - "$default" <<'PY'
import json, re, sys, os
default = sys.argv[1]
m = json.load(open("META.json"))
bad = []
def need(cond, what):
    if not cond: bad.append(what)
semver = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)([a-zA-Z][0-9a-zA-Z-]*)?$")
licenses = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd",
            "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit",
            "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay",
            "sun", "zlib", "open_source", "restricted", "unrestricted", "unknown"}
for k in ("name", "abstract", "maintainer", "version", "license", "provides", "meta-spec"):
    need(k in m, "missing " + k)
need(m.get("meta-spec", {}).get("version") == "1.0.0", "meta-spec version is not 1.0.0")
need(isinstance(m.get("name"), str) and re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", m["name"] or ""), "bad name")
need(isinstance(m.get("abstract"), str) and m["abstract"], "bad abstract")
mt = m.get("maintainer")
need(isinstance(mt, str) or (isinstance(mt, list) and mt and all(isinstance(x, str) for x in mt)), "bad maintainer")
need(semver.match(str(m.get("version"))), "version is not a semantic version")
need(m.get("version") == default, "version %s, the server installs %s" % (m.get("version"), default))
lic = m.get("license")
need((isinstance(lic, str) and lic in licenses) or (isinstance(lic, list) and lic and all(x in licenses for x in lic))
     or (isinstance(lic, dict) and lic), "bad license")
prov = m.get("provides", {})
need(isinstance(prov, dict) and prov, "provides is empty")
for ext, p in prov.items():
    need(semver.match(str(p.get("version"))), ext + ": version is not semantic")
    need(os.path.isfile(p.get("file", "")), ext + ": file missing")
    if "docfile" in p: need(os.path.isfile(p["docfile"]), ext + ": docfile missing")
need(m.get("provides", {}).get("billing", {}).get("version") == default, "provides billing not at the default version")
need(m.get("release_status", "stable") in ("stable", "testing", "unstable"), "bad release_status")
for phase, rels in m.get("prereqs", {}).items():
    need(phase in ("configure", "build", "test", "runtime", "develop"), "bad prereq phase " + phase)
    for rel, mods in rels.items():
        need(rel in ("requires", "recommends", "suggests", "conflicts"), "bad prereq relation " + rel)
        for mod, ver in mods.items():
            need(ver == 0 or ver == "0" or all(
                re.match(r"^(==|!=|>=|<=|>|<)?\s*" + semver.pattern[1:-1] + "$", part.strip())
                for part in str(ver).split(",")), "bad prereq version %s %s" % (mod, ver))
for k in m:
    need(k in ("name", "abstract", "description", "maintainer", "version", "license", "provides",
               "meta-spec", "prereqs", "release_status", "resources", "tags", "generated_by",
               "no_index") or k.startswith("x_") or k.startswith("X_"), "unknown key " + k)
need(isinstance(m.get("tags", []), list), "tags is not a list")
if bad:
    print("\n".join("FAIL: " + b for b in bad)); sys.exit(1)
print("META.json ok")
PY
