#!/usr/bin/env python3
"""bench_bundle.py - writes the bundles the nginx benchmarks serve.

The bench domain (pattern `bench\\.test`, unanchored, so `bench.test` and any `*.bench.test`
host match it) carries the seed's three plugins: the token check (access), the content and the
CORS header (header_filter). The other domains are fillers `siteN\\.example\\.com` (N from 1),
one content plugin each; no filler matches a `*.bench.test` host. --version changes only
site1's plugin (its answer names the version), so two versions differ by one plugin.
--runaway writes the two-domain bundle of the runaway measure instead. --parts LIST keeps
only the listed plugins of the three (access, content, header: comma-separated, or "none") on
the bench domain: the others become `local x = 1`, and the content plugin, when not kept,
writes the same body with one ngx.print (bench_parts.sh measures each plugin's share so).
The file is written atomically (temporary file, then rename): the API server re-reads it on
every request and never sees half a bundle.
"""
import argparse
import json
import os

ACCESS = ("local token = ngx.var.arg_token or ngx.var.cookie_superstition\r\n\r\n"
          "if token ~= 'token' then\r\n  return ngx.exit(ngx.HTTP_FORBIDDEN)\r\nelse\r\n"
          "  ngx.header['Set-Cookie'] = {'superstition=token'}\r\nend")
CONTENT = "ngx.say(\"olá mundo!\")\r\nngx.say(\"hello world!\")"
HEADER = "ngx.header[\"Access-Control-Allow-Origin\"] = \"http://dynamic.local.com\""


NOTHING = "local x = 1"
ONE_PRINT = "ngx.print(\"olá mundo!\\nhello world!\\n\")"


def bench_bundle(domains, version, parts=("access", "content", "header")):
    out = [{"name": "bench\\.test", "plugins": [
        {"name": "dynamic content", "code": CONTENT if "content" in parts else ONE_PRINT,
         "phase": "content"},
        {"name": "adding cors headers", "code": HEADER if "header" in parts else NOTHING,
         "phase": "header_filter"},
        {"name": "authentication required", "code": ACCESS if "access" in parts else NOTHING,
         "phase": "access"}]}]
    for n in range(1, domains):
        text = "site %d v%d" % (n, version) if n == 1 else "site %d" % n
        out.append({"name": "site%d\\.example\\.com" % n, "plugins": [
            {"name": "filler %d" % n, "code": "ngx.say(%s)" % json.dumps(text),
             "phase": "content"}]})
    return {"general": {"status": "enabled"}, "domains": out}


def runaway_bundle():
    return {"general": {"status": "enabled"}, "domains": [
        {"name": "^loop\\.test$", "plugins": [
            {"name": "runaway", "phase": "access", "code": "while true do end"}]},
        {"name": "^ok\\.test$", "plugins": [
            {"name": "fine", "phase": "content", "code": "ngx.say('ok')"}]}]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=2, help="bench domain + fillers (>= 1)")
    ap.add_argument("--version", type=int, default=1)
    ap.add_argument("--runaway", action="store_true")
    ap.add_argument("--parts", default="access,content,header",
                    help="the bench plugins kept: access,content,header or none")
    ap.add_argument("out")
    a = ap.parse_args()
    if a.domains < 1 or a.domains > 100000:
        ap.error("--domains: 1 to 100000")
    parts = () if a.parts == "none" else tuple(a.parts.split(","))
    if any(x not in ("access", "content", "header") for x in parts):
        ap.error("--parts: access, content, header (comma-separated) or none")
    bundle = runaway_bundle() if a.runaway else bench_bundle(a.domains, a.version, parts)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(bundle, f, ensure_ascii=False, indent=0)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
