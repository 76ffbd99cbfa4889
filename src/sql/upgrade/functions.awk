# src/sql/upgrade/functions.awk - prints the functions and procedures of an
# install file as CREATE OR REPLACE, with their COMMENT ON, and nothing else
# (no tables, triggers, ALTERs, INSERTs).  The Makefile runs it over the
# install files of UPGRADE_FUNCTIONS to re-create, in the upgrade script,
# every function those files define, changed or not.
#
# A statement starts on a line that begins with CREATE FUNCTION, CREATE
# PROCEDURE or COMMENT ON FUNCTION|PROCEDURE and ends on the first line that
# ends with ";" outside dollar quotes ($$ or $tag$), which is how every file
# in src/sql/install/ is written.
BEGIN { inside = 0; quote = "" }
function dollar_state(line,    rest, tag) {
	# toggles the open dollar quote for every $tag$ on the line
	rest = line
	while (match(rest, /\$[A-Za-z_]*\$/)) {
		tag = substr(rest, RSTART, RLENGTH)
		if (quote == "") quote = tag
		else if (quote == tag) quote = ""
		rest = substr(rest, RSTART + RLENGTH)
	}
}
{
	if (!inside && $0 ~ /^(CREATE (FUNCTION|PROCEDURE)|COMMENT ON (FUNCTION|PROCEDURE)) /) {
		inside = 1
		quote = ""
		sub(/^CREATE FUNCTION /, "CREATE OR REPLACE FUNCTION ")
		sub(/^CREATE PROCEDURE /, "CREATE OR REPLACE PROCEDURE ")
		print ""
	}
	if (inside) {
		print
		dollar_state($0)
		if (quote == "" && $0 ~ /;[ \t]*(--.*)?$/) inside = 0
	}
}
END { if (inside) { print "functions.awk: unterminated statement in " FILENAME > "/dev/stderr"; exit 1 } }
