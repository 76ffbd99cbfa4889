/*
 * billing-worker: delivers billing's outbox (worker/README.md).
 *
 * It LISTENs on billing_events, claims deliveries with
 * billing.claim_deliveries (SKIP LOCKED, under a lease), sends each one
 * (an e-mail over SMTP, or a signed webhook POST), and reports with
 * billing.finish_delivery, which retries with backoff and keeps dead
 * letters.  Every decision about what is due lives in the database; the
 * worker only sends.  Secrets come from files named in the configuration,
 * never from the database.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define MAX_WEBHOOKS 32

typedef struct Webhook
{
	char		name[65];
	char	   *url;
	char	   *events;			/* comma-separated prefixes, NULL: every event */
} Webhook;

typedef struct Config
{
	char	   *conninfo;
	char	   *worker_name;
	char	   *smtp_url;
	char	   *smtp_from;
	char	   *smtp_user;
	char	   *smtp_password;	/* read from smtp_password_file */
	char	   *webhook_secret;	/* read from webhook_secret_file */
	char	   *chromium;		/* "none": no PDF */
	Webhook		webhooks[MAX_WEBHOOKS];
	int			nwebhooks;
	int			max_tries;
	int			backoff_seconds;
	int			max_backoff_seconds;
	int			lease_seconds;
	int			batch_size;
	int			http_timeout;
	int			smtp_timeout;
	int			pdf_timeout;
	int			poll_seconds;
} Config;

static int	address_ok(const char *a);

static volatile sig_atomic_t stop_requested = 0;

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static void
logmsg(const char *fmt,...)
{
	va_list		ap;
	char		ts[32];
	time_t		now = time(NULL);
	struct tm	tm;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s billing-worker[%d]: ", ts, (int) getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static char *
xstrdup(const char *s)
{
	char	   *r = strdup(s);

	if (r == NULL)
	{
		logmsg("out of memory");
		exit(2);
	}
	return r;
}

static char *
trim(char *s)
{
	char	   *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/* The whole of a small file (a secret), its trailing newline dropped. */
static char *
read_secret(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		buf[4096];
	size_t		n;

	if (f == NULL)
	{
		logmsg("cannot read %s: %s", path, strerror(errno));
		exit(2);
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return xstrdup(trim(buf));
}

static int
parse_int(const char *key, const char *v, int lo, int hi)
{
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v || n < lo || n > hi)
	{
		logmsg("configuration: %s must be a number from %d to %d, not \"%s\"", key, lo, hi, v);
		exit(2);
	}
	return (int) n;
}

static Webhook *
webhook_named(Config *c, const char *name)
{
	size_t		len = strlen(name);

	for (int i = 0; i < c->nwebhooks; i++)
		if (strcmp(c->webhooks[i].name, name) == 0)
			return &c->webhooks[i];
	if (c->nwebhooks == MAX_WEBHOOKS)
	{
		logmsg("configuration: more than %d webhooks", MAX_WEBHOOKS);
		exit(2);
	}
	if (len == 0 || len > 64 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
	{
		logmsg("configuration: webhook name \"%s\" must have 1 to 64 letters, digits, dots, dashes or underscores", name);
		exit(2);
	}
	memcpy(c->webhooks[c->nwebhooks].name, name, len + 1);
	return &c->webhooks[c->nwebhooks++];
}

static void
load_config(Config *c, const char *path)
{
	FILE	   *f = fopen(path, "r");
	char		line[4096];
	int			lineno = 0;

	memset(c, 0, sizeof *c);
	c->max_tries = 8;
	c->backoff_seconds = 60;
	c->max_backoff_seconds = 6 * 3600;
	c->lease_seconds = 300;
	c->batch_size = 10;
	c->http_timeout = 30;
	c->smtp_timeout = 60;
	c->pdf_timeout = 60;
	c->poll_seconds = 30;
	if (f == NULL)
	{
		logmsg("cannot read configuration %s: %s", path, strerror(errno));
		exit(2);
	}
	while (fgets(line, sizeof line, f))
	{
		char	   *eq,
				   *k,
				   *v;

		lineno++;
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (eq == NULL)
		{
			logmsg("configuration %s:%d: expected key = value", path, lineno);
			exit(2);
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		if (strcmp(k, "conninfo") == 0)
			c->conninfo = xstrdup(v);
		else if (strcmp(k, "worker_name") == 0)
			c->worker_name = xstrdup(v);
		else if (strcmp(k, "smtp_url") == 0)
			c->smtp_url = xstrdup(v);
		else if (strcmp(k, "smtp_from") == 0)
			c->smtp_from = xstrdup(v);
		else if (strcmp(k, "smtp_user") == 0)
			c->smtp_user = xstrdup(v);
		else if (strcmp(k, "smtp_password_file") == 0)
			c->smtp_password = read_secret(v);
		else if (strcmp(k, "webhook_secret_file") == 0)
			c->webhook_secret = read_secret(v);
		else if (strcmp(k, "chromium") == 0)
			c->chromium = xstrdup(v);
		else if (strncmp(k, "webhook.", 8) == 0)
			webhook_named(c, k + 8)->url = xstrdup(v);
		else if (strncmp(k, "webhook_events.", 15) == 0)
			webhook_named(c, k + 15)->events = xstrdup(v);
		else if (strcmp(k, "max_tries") == 0)
			c->max_tries = parse_int(k, v, 1, 1000);
		else if (strcmp(k, "backoff_seconds") == 0)
			c->backoff_seconds = parse_int(k, v, 1, 86400);
		else if (strcmp(k, "max_backoff_seconds") == 0)
			c->max_backoff_seconds = parse_int(k, v, 1, 30 * 86400);
		else if (strcmp(k, "lease_seconds") == 0)
			c->lease_seconds = parse_int(k, v, 1, 86400);
		else if (strcmp(k, "batch_size") == 0)
			c->batch_size = parse_int(k, v, 1, 10000);
		else if (strcmp(k, "http_timeout_seconds") == 0)
			c->http_timeout = parse_int(k, v, 1, 3600);
		else if (strcmp(k, "smtp_timeout_seconds") == 0)
			c->smtp_timeout = parse_int(k, v, 1, 3600);
		else if (strcmp(k, "pdf_timeout_seconds") == 0)
			c->pdf_timeout = parse_int(k, v, 1, 3600);
		else if (strcmp(k, "poll_seconds") == 0)
			c->poll_seconds = parse_int(k, v, 1, 3600);
		else
		{
			logmsg("configuration %s:%d: unknown key \"%s\"", path, lineno, k);
			exit(2);
		}
	}
	fclose(f);
	if (c->conninfo == NULL)
		c->conninfo = xstrdup("");
	if (c->chromium == NULL)
		c->chromium = xstrdup("chromium");
	if (c->smtp_url != NULL && (c->smtp_from == NULL || !address_ok(c->smtp_from)))
	{
		logmsg("configuration: smtp_url needs smtp_from, an address such as billing@example.com");
		exit(2);
	}
	if (c->smtp_url == NULL && c->nwebhooks == 0)
	{
		logmsg("configuration: nothing to deliver (no smtp_url, no webhook.<name>)");
		exit(2);
	}
	for (int i = 0; i < c->nwebhooks; i++)
		if (c->webhooks[i].url == NULL)
		{
			logmsg("configuration: webhook_events.%s without webhook.%s", c->webhooks[i].name, c->webhooks[i].name);
			exit(2);
		}
	if (c->nwebhooks > 0 && (c->webhook_secret == NULL || c->webhook_secret[0] == '\0'))
	{
		logmsg("configuration: webhooks need webhook_secret_file (a non-empty secret)");
		exit(2);
	}
	if (c->max_backoff_seconds < c->backoff_seconds)
	{
		logmsg("configuration: max_backoff_seconds must not be below backoff_seconds");
		exit(2);
	}
	/*
	 * A live worker must never lose its lease: then another would send the
	 * same delivery while the first is still at it.
	 */
	if ((c->nwebhooks > 0 && c->lease_seconds <= c->http_timeout)
		|| (c->smtp_url != NULL && c->lease_seconds <= c->smtp_timeout + c->pdf_timeout))
	{
		logmsg("configuration: lease_seconds must exceed http_timeout_seconds and "
			   "smtp_timeout_seconds + pdf_timeout_seconds");
		exit(2);
	}
}

/* ------------------------------------------------------------------ */
/* A growing buffer. */

typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_add(Buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
		{
			logmsg("out of memory");
			exit(2);
		}
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static size_t
curl_to_buf(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Buf		   *b = userdata;
	size_t		n = size * nmemb;

	/* a receiver's answer is kept only as far as a reason needs it */
	if (b->len < 4096)
		buf_add(b, ptr, n < 4096 ? n : 4096);
	return n;
}

/* A receiver's answer for the delivery's reason: one line, printable. */
static void
clean_detail(char *s)
{
	for (char *p = s; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (strlen(s) > 500)
		s[500] = '\0';
}

/* ------------------------------------------------------------------ */
/* Webhooks. */

static int
webhook_wants(const Webhook *w, const char *event_type)
{
	const char *p = w->events;

	if (p == NULL)
		return 1;
	while (*p)
	{
		const char *comma = strchr(p, ',');
		size_t		n = comma ? (size_t) (comma - p) : strlen(p);

		while (n > 0 && isspace((unsigned char) *p))
			p++, n--;
		while (n > 0 && isspace((unsigned char) p[n - 1]))
			n--;
		if (n == 1 && *p == '*')
			return 1;
		/* "invoice." takes every invoice event, "invoice.paid" that one */
		if (n > 0 && strncmp(event_type, p, n) == 0 && (p[n - 1] == '.' || event_type[n] == '\0'))
			return 1;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
}

/* hex(HMAC-SHA256(secret, "<t>.<body>")) into out (65 bytes), by
 * OpenSSL's HMAC. */
static void
sign(const char *secret, long t, const char *body, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	char		prefix[32];
	int			plen = snprintf(prefix, sizeof prefix, "%ld.", t);
	EVP_MAC    *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *mc = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM	params[2];
	size_t		maclen = 0;

	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (mc == NULL || !EVP_MAC_init(mc, (const unsigned char *) secret, strlen(secret), params)
		|| !EVP_MAC_update(mc, (const unsigned char *) prefix, (size_t) plen)
		|| !EVP_MAC_update(mc, (const unsigned char *) body, strlen(body))
		|| !EVP_MAC_final(mc, mac, &maclen, sizeof mac))
	{
		logmsg("HMAC-SHA256 failed");
		exit(2);
	}
	EVP_MAC_CTX_free(mc);
	EVP_MAC_free(m);
	for (size_t i = 0; i < maclen; i++)
		sprintf(out + 2 * i, "%02x", mac[i]);
	out[2 * maclen] = '\0';
}

/* 0: delivered; 1: failed, *detail says why. */
static int
send_webhook(const Config *c, const Webhook *w, const char *event_id, const char *event_type, int try,
			 const char *body, char *detail, size_t detail_size)
{
	CURL	   *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char		line[256];
	char		sig[2 * EVP_MAX_MD_SIZE + 1];
	long		t = (long) time(NULL);
	long		status = 0;
	Buf			answer = {0};
	CURLcode	rc;
	int			result;

	if (h == NULL)
	{
		snprintf(detail, detail_size, "curl_easy_init failed");
		return 1;
	}
	sign(c->webhook_secret, t, body, sig);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	snprintf(line, sizeof line, "Billing-Event-Id: %s", event_id);
	hdr = curl_slist_append(hdr, line);
	snprintf(line, sizeof line, "Billing-Event-Type: %s", event_type);
	hdr = curl_slist_append(hdr, line);
	snprintf(line, sizeof line, "Billing-Delivery-Attempt: %d", try);
	hdr = curl_slist_append(hdr, line);
	snprintf(line, sizeof line, "Billing-Signature: t=%ld,v1=%s", t, sig);
	hdr = curl_slist_append(hdr, line);
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, w->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) c->http_timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "billing-worker");
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_to_buf);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
	{
		snprintf(detail, detail_size, "%s", curl_easy_strerror(rc));
		result = 1;
	}
	else
	{
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		snprintf(detail, detail_size, "HTTP %ld%s%.200s", status, answer.len ? ": " : "",
				 answer.data ? answer.data : "");
		result = (status >= 200 && status < 300) ? 0 : 1;
	}
	clean_detail(detail);
	free(answer.data);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return result;
}

/* ------------------------------------------------------------------ */
/* E-mail. */

/* An address usable in an envelope and a header: no spaces, controls,
 * brackets or commas, one @ with something on both sides. */
static int
address_ok(const char *a)
{
	const char *at = strchr(a, '@');

	if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@') != NULL || strlen(a) > 254)
		return 0;
	for (const char *p = a; *p; p++)
		if ((unsigned char) *p <= 0x20 || *p == 0x7f || strchr("<>,;:\"()[]\\", *p) != NULL)
			return 0;
	return 1;
}

/* A header value in RFC 2047 base64, which keeps any UTF-8 and any
 * newline out of the header's syntax. */
static char *
encode_header(const char *s)
{
	size_t		n = strlen(s);
	char	   *b64 = malloc(4 * ((n + 2) / 3) + 1);
	char	   *out;

	if (b64 == NULL)
		exit(2);
	EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) s, (int) n);
	if (asprintf(&out, "=?UTF-8?B?%s?=", b64) < 0)
		exit(2);
	free(b64);
	return out;
}

/* PDF of the HTML by headless Chromium, in a private directory; NULL
 * (with *detail) when it could not be made. */
static char *
make_pdf(const Config *c, const char *html, size_t *pdf_len, char *detail, size_t detail_size)
{
	char		dir[] = "/tmp/billing-worker-XXXXXX";
	/* the paths are in dir, whose name has a fixed length */
	char		htmlpath[64], pdfpath[64], profile[64], arg_pdf[96], arg_profile[96], url[96], logpath[64];
	FILE	   *f;
	pid_t		pid;
	int			status = 0;
	char	   *pdf = NULL;
	time_t		deadline;

	if (mkdtemp(dir) == NULL)
	{
		snprintf(detail, detail_size, "mkdtemp: %s", strerror(errno));
		return NULL;
	}
	snprintf(htmlpath, sizeof htmlpath, "%s/invoice.html", dir);
	snprintf(pdfpath, sizeof pdfpath, "%s/invoice.pdf", dir);
	snprintf(profile, sizeof profile, "%s/profile", dir);
	snprintf(logpath, sizeof logpath, "%s/chromium.log", dir);
	snprintf(arg_pdf, sizeof arg_pdf, "--print-to-pdf=%s", pdfpath);
	snprintf(arg_profile, sizeof arg_profile, "--user-data-dir=%s", profile);
	snprintf(url, sizeof url, "file://%s", htmlpath);
	f = fopen(htmlpath, "w");
	if (f == NULL || fputs(html, f) == EOF || fclose(f) != 0)
	{
		snprintf(detail, detail_size, "cannot write %s", htmlpath);
		goto done;
	}
	pid = fork();
	if (pid < 0)
	{
		snprintf(detail, detail_size, "fork: %s", strerror(errno));
		goto done;
	}
	if (pid == 0)
	{
		int			fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0)
		{
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setpgid(0, 0);
		execlp(c->chromium, c->chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			   "--disable-background-networking", "--disable-component-update", "--disable-sync",
			   "--no-pdf-header-footer", arg_profile, arg_pdf, url, (char *) NULL);
		_exit(127);
	}
	/* Chromium gets pdf_timeout seconds, then it and its children go */
	deadline = time(NULL) + c->pdf_timeout;
	for (;;)
	{
		pid_t		r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			break;
		if (time(NULL) >= deadline)
		{
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(detail, detail_size, "chromium took longer than %d seconds", c->pdf_timeout);
			goto done;
		}
		usleep(100 * 1000);
	}
	/* its helper processes may outlive it */
	kill(-pid, SIGKILL);
	f = fopen(pdfpath, "rb");
	if (f == NULL)
	{
		snprintf(detail, detail_size, "chromium made no PDF (exit status %d)",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		goto done;
	}
	{
		Buf			b = {0};
		char		chunk[65536];
		size_t		n;

		while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
			buf_add(&b, chunk, n);
		fclose(f);
		if (b.len < 5 || memcmp(b.data, "%PDF-", 5) != 0)
		{
			snprintf(detail, detail_size, "chromium's output is not a PDF");
			free(b.data);
			goto done;
		}
		pdf = b.data;
		*pdf_len = b.len;
	}
done:
	{
		char	   *cmd;

		/* the directory is ours alone (mkdtemp); its path has no quote */
		if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0)
		{
			if (system(cmd) != 0)
				logmsg("could not remove %s", dir);
			free(cmd);
		}
	}
	return pdf;
}

/* 0: delivered; 1: failed; 2: skipped.  *detail says why. */
static int
send_email(const Config *c, PGconn *conn, const char *account_id, const char *event_id,
		   char *detail, size_t detail_size)
{
	const char *params[2] = {account_id, event_id};
	PGresult   *r;
	const char *rcpt, *subject, *html, *text, *invoice_id;
	char	   *pdf = NULL;
	size_t		pdf_len = 0;
	CURL	   *h = NULL;
	curl_mime  *mime = NULL, *alt;
	curl_mimepart *part;
	struct curl_slist *hdr = NULL, *rcpts = NULL, *althdr = NULL;
	char	   *line = NULL, *enc = NULL;
	char		from[300], to[300], date[64];
	time_t		now = time(NULL);
	struct tm	tm;
	CURLcode	rc;
	int			result = 1;

	r = PQexecParams(conn, "SELECT recipient, subject, html, text_body, invoice_id "
					 "FROM billing.delivery_email($1::bigint, $2::bigint)", 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
	{
		snprintf(detail, detail_size, "billing.delivery_email: %s", PQerrorMessage(conn));
		clean_detail(detail);
		PQclear(r);
		return 1;
	}
	if (PQgetisnull(r, 0, 0))
	{
		snprintf(detail, detail_size, "the account has no e-mail address");
		PQclear(r);
		return 2;
	}
	rcpt = PQgetvalue(r, 0, 0);
	if (!address_ok(rcpt))
	{
		snprintf(detail, detail_size, "the account's e-mail address is not usable");
		PQclear(r);
		return 2;
	}
	subject = PQgetvalue(r, 0, 1);
	html = PQgetvalue(r, 0, 2);
	text = PQgetvalue(r, 0, 3);
	invoice_id = PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4);
	if (invoice_id != NULL && strcmp(c->chromium, "none") != 0)
	{
		pdf = make_pdf(c, html, &pdf_len, detail, detail_size);
		if (pdf == NULL)
			goto out;			/* tried again later: an invoice goes with its PDF */
	}

	h = curl_easy_init();
	if (h == NULL)
	{
		snprintf(detail, detail_size, "curl_easy_init failed");
		goto out;
	}
	snprintf(from, sizeof from, "<%s>", c->smtp_from);
	snprintf(to, sizeof to, "<%s>", rcpt);
	rcpts = curl_slist_append(rcpts, to);
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "Date: %a, %d %b %Y %H:%M:%S +0000", &tm);
	hdr = curl_slist_append(hdr, date);
	if (asprintf(&line, "From: <%s>", c->smtp_from) < 0)
		exit(2);
	hdr = curl_slist_append(hdr, line);
	free(line);
	if (asprintf(&line, "To: <%s>", rcpt) < 0)
		exit(2);
	hdr = curl_slist_append(hdr, line);
	free(line);
	enc = encode_header(subject);
	if (asprintf(&line, "Subject: %s", enc) < 0)
		exit(2);
	hdr = curl_slist_append(hdr, line);
	free(line);
	/* one Message-ID per event: a receiving system can drop a second copy */
	if (asprintf(&line, "Message-ID: <billing-event-%s-%s@%s>", account_id, event_id,
				 strchr(c->smtp_from, '@') + 1) < 0)
		exit(2);
	hdr = curl_slist_append(hdr, line);
	free(line);
	if (asprintf(&line, "Billing-Event-Id: %s", event_id) < 0)
		exit(2);
	hdr = curl_slist_append(hdr, line);
	free(line);
	hdr = curl_slist_append(hdr, "MIME-Version: 1.0");

	/* multipart/mixed: (text/plain | text/html) alternatives, then the PDF */
	mime = curl_mime_init(h);
	alt = curl_mime_init(h);
	part = curl_mime_addpart(alt);
	curl_mime_data(part, text, CURL_ZERO_TERMINATED);
	curl_mime_type(part, "text/plain; charset=utf-8");
	curl_mime_encoder(part, "quoted-printable");
	part = curl_mime_addpart(alt);
	curl_mime_data(part, html, CURL_ZERO_TERMINATED);
	curl_mime_type(part, "text/html; charset=utf-8");
	curl_mime_encoder(part, "quoted-printable");
	part = curl_mime_addpart(mime);
	curl_mime_subparts(part, alt);
	curl_mime_type(part, "multipart/alternative");
	althdr = curl_slist_append(althdr, "Content-Disposition: inline");
	curl_mime_headers(part, althdr, 1);
	althdr = NULL;
	if (pdf != NULL)
	{
		char		fname[64];

		snprintf(fname, sizeof fname, "invoice-%s.pdf", invoice_id);
		part = curl_mime_addpart(mime);
		curl_mime_data(part, pdf, pdf_len);
		curl_mime_type(part, "application/pdf");
		curl_mime_filename(part, fname);
		curl_mime_encoder(part, "base64");
	}
	curl_easy_setopt(h, CURLOPT_URL, c->smtp_url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) c->smtp_timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (c->smtp_user != NULL)
		curl_easy_setopt(h, CURLOPT_USERNAME, c->smtp_user);
	if (c->smtp_password != NULL)
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->smtp_password);
	if (strncmp(c->smtp_url, "smtp://", 7) == 0 && c->smtp_user != NULL)
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);	/* no password in clear */
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
	{
		snprintf(detail, detail_size, "sent to %s", rcpt);
		result = 0;
	}
	else
		snprintf(detail, detail_size, "SMTP: %s", curl_easy_strerror(rc));
	clean_detail(detail);
out:
	free(enc);
	free(pdf);
	curl_mime_free(mime);
	curl_slist_free_all(hdr);
	curl_slist_free_all(rcpts);
	if (h)
		curl_easy_cleanup(h);
	PQclear(r);
	return result;
}

/* ------------------------------------------------------------------ */
/* The loop. */

static PGconn *
connect_db(const Config *c)
{
	for (;;)
	{
		PGconn	   *conn = PQconnectdb(c->conninfo);
		PGresult   *r;

		if (PQstatus(conn) == CONNECTION_OK)
		{
			r = PQexec(conn, "LISTEN billing_events");
			if (PQresultStatus(r) == PGRES_COMMAND_OK)
			{
				PQclear(r);
				return conn;
			}
			PQclear(r);
		}
		logmsg("cannot connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		for (int i = 0; i < 5 && !stop_requested; i++)
			sleep(1);
		if (stop_requested)
			return NULL;
	}
}

static char *
channels_array(const Config *c)
{
	Buf			b = {0};

	buf_add(&b, "{", 1);
	if (c->smtp_url != NULL)
		buf_add(&b, "email", 5);
	for (int i = 0; i < c->nwebhooks; i++)
	{
		if (b.len > 1)
			buf_add(&b, ",", 1);
		buf_add(&b, "webhook:", 8);
		buf_add(&b, c->webhooks[i].name, strlen(c->webhooks[i].name));
	}
	buf_add(&b, "}", 1);
	return b.data;
}

/* Reports one outcome; a refused report (the lease was lost) is logged. */
static void
finish(const Config *c, PGconn *conn, const char *account_id, const char *event_id, const char *channel,
	   const char *outcome, const char *detail)
{
	char		tries[16], backoff[32], maxb[32];
	const char *params[9];
	PGresult   *r;

	snprintf(tries, sizeof tries, "%d", c->max_tries);
	snprintf(backoff, sizeof backoff, "%d seconds", c->backoff_seconds);
	snprintf(maxb, sizeof maxb, "%d seconds", c->max_backoff_seconds);
	params[0] = account_id;
	params[1] = event_id;
	params[2] = channel;
	params[3] = c->worker_name;
	params[4] = outcome;
	params[5] = detail;
	params[6] = tries;
	params[7] = backoff;
	params[8] = maxb;
	r = PQexecParams(conn, "SELECT billing.finish_delivery($1::bigint, $2::bigint, $3, $4, $5, $6, $7::integer, "
					 "$8::interval, $9::interval)", 9, NULL, params, NULL, NULL, 0);
	/*
	 * billing refuses to store a card number: a receiver's answer holding
	 * one is reported again without it, so that the outcome still counts.
	 */
	if (PQresultStatus(r) == PGRES_FATAL_ERROR && detail[0] != '\0'
		&& strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "", "22023") == 0)
	{
		PQclear(r);
		params[5] = "the receiver's answer was not kept (it looked like a card number)";
		r = PQexecParams(conn, "SELECT billing.finish_delivery($1::bigint, $2::bigint, $3, $4, $5, $6, $7::integer, "
						 "$8::interval, $9::interval)", 9, NULL, params, NULL, NULL, 0);
	}
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		logmsg("event %s %s: %s -> %s (%s)", event_id, channel, outcome, PQgetvalue(r, 0, 0), detail);
	else
		logmsg("event %s %s: report refused: %s", event_id, channel, PQerrorMessage(conn));
	PQclear(r);
}

/* One claim and its deliveries; returns how many were claimed, -1 when
 * the connection failed. */
static int
run_batch(const Config *c, PGconn *conn, const char *channels)
{
	char		batch[16], lease[32], tries[16];
	const char *params[5] = {c->worker_name, channels, batch, lease, tries};
	PGresult   *r;
	int			n;

	snprintf(batch, sizeof batch, "%d", c->batch_size);
	snprintf(lease, sizeof lease, "%d seconds", c->lease_seconds);
	snprintf(tries, sizeof tries, "%d", c->max_tries);
	r = PQexecParams(conn,
					 "SELECT d.account_id, d.event_id, d.channel, d.try, d.event_type, "
					 "       pg_catalog.jsonb_build_object('id', d.event_id, 'type', d.event_type, "
					 "           'account_id', d.account_id, 'created_at', d.event_created_at, 'data', d.payload)::text "
					 "FROM billing.claim_deliveries($1, $2::text[], $3::integer, $4::interval, $5::integer) d",
					 5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		logmsg("claim failed: %s", PQerrorMessage(conn));
		PQclear(r);
		return PQstatus(conn) == CONNECTION_OK ? 0 : -1;
	}
	n = PQntuples(r);
	for (int i = 0; i < n; i++)
	{
		const char *account_id = PQgetvalue(r, i, 0);
		const char *event_id = PQgetvalue(r, i, 1);
		const char *channel = PQgetvalue(r, i, 2);
		int			try = atoi(PQgetvalue(r, i, 3));
		const char *event_type = PQgetvalue(r, i, 4);
		const char *body = PQgetvalue(r, i, 5);
		char		detail[1024] = "";
		int			res;

		if (strcmp(channel, "email") == 0)
			res = send_email(c, conn, account_id, event_id, detail, sizeof detail);
		else
		{
			const Webhook *w = NULL;

			for (int k = 0; k < c->nwebhooks; k++)
				if (strcmp(channel + 8, c->webhooks[k].name) == 0)
					w = &c->webhooks[k];
			if (w == NULL)
			{
				snprintf(detail, sizeof detail, "no such webhook in the configuration");
				res = 1;
			}
			else if (!webhook_wants(w, event_type))
			{
				snprintf(detail, sizeof detail, "event type not subscribed by the webhook");
				res = 2;
			}
			else
				res = send_webhook(c, w, event_id, event_type, try, body, detail, sizeof detail);
		}
		finish(c, conn, account_id, event_id, channel, res == 0 ? "delivered" : res == 2 ? "skipped" : "failed",
			   detail);
		if (PQstatus(conn) != CONNECTION_OK)
		{
			PQclear(r);
			return -1;
		}
	}
	PQclear(r);
	return n;
}

/* Whether deliveries of these channels are still pending or claimed. */
static int
work_left(PGconn *conn, const char *channels)
{
	const char *params[1] = {channels};
	PGresult   *r = PQexecParams(conn, "SELECT (SELECT count(*) FROM billing.delivery d "
									 "        WHERE d.status IN ('pending', 'claimed') AND d.channel = ANY ($1::text[])) "
									 "     + (SELECT count(*) FROM billing.outbox o WHERE o.processed_at IS NULL "
									 "        AND NOT EXISTS (SELECT FROM billing.delivery d "
									 "                        WHERE d.account_id = o.account_id AND d.event_id = o.event_id))",
									 1, NULL, params, NULL, NULL, 0);
	int			left = 1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		left = atol(PQgetvalue(r, 0, 0)) > 0;
	PQclear(r);
	return left;
}

static void
usage(void)
{
	fprintf(stderr, "usage: billing-worker [--until-idle] CONFIG_FILE\n"
			"  --until-idle  exit once no delivery of its channels is pending or claimed\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	Config		c;
	PGconn	   *conn;
	char	   *channels;
	int			until_idle = 0;
	const char *path = NULL;
	struct sigaction sa;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--until-idle") == 0)
			until_idle = 1;
		else if (argv[i][0] == '-' || path != NULL)
			usage();
		else
			path = argv[i];
	}
	if (path == NULL)
		usage();
	load_config(&c, path);
	if (c.worker_name == NULL)
	{
		char		host[256] = "host";
		char		name[320];

		gethostname(host, sizeof host - 1);
		host[sizeof host - 1] = '\0';
		snprintf(name, sizeof name, "%s:%d:%ld", host, (int) getpid(), (long) time(NULL));
		c.worker_name = xstrdup(name);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
	{
		logmsg("curl_global_init failed");
		return 2;
	}
	channels = channels_array(&c);
	logmsg("worker %s delivering %s", c.worker_name, channels);
	conn = connect_db(&c);
	while (conn != NULL && !stop_requested)
	{
		int			n = run_batch(&c, conn, channels);
		PGnotify   *note;

		if (n < 0)
		{
			PQfinish(conn);
			conn = connect_db(&c);
			continue;
		}
		if (n == c.batch_size)
			continue;			/* more may be due at once */
		if (until_idle && !work_left(conn, channels))
			break;
		/* wait for a NOTIFY, or poll for retries falling due */
		{
			fd_set		fds;
			struct timeval tv = {until_idle ? 1 : c.poll_seconds, 0};
			int			sock = PQsocket(conn);

			FD_ZERO(&fds);
			FD_SET(sock, &fds);
			if (select(sock + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
				logmsg("select: %s", strerror(errno));
		}
		if (!PQconsumeInput(conn))
		{
			logmsg("connection lost: %s", PQerrorMessage(conn));
			PQfinish(conn);
			conn = connect_db(&c);
			continue;
		}
		while ((note = PQnotifies(conn)) != NULL)
			PQfreemem(note);
	}
	logmsg("worker %s stopping", c.worker_name);
	PQfinish(conn);
	free(channels);
	curl_global_cleanup();
	free(c.conninfo);
	free(c.worker_name);
	free(c.smtp_url);
	free(c.smtp_from);
	free(c.smtp_user);
	free(c.smtp_password);
	free(c.webhook_secret);
	free(c.chromium);
	for (int i = 0; i < c.nwebhooks; i++)
	{
		free(c.webhooks[i].url);
		free(c.webhooks[i].events);
	}
	return 0;
}
