#!/usr/bin/env python3
"""compat.py - OpenResty behaviours, written as small cases (tests/compat/cases/*.t), turned
into one bundle and checked through `dynacode run` and through nginx with the module.

A case file holds blocks:

    === TITLE
    --- mirrors: the lua-nginx-module test file and case the block states the behaviour of
    --- rewrite | access | content | header_filter | body_filter | log
    Lua code of a plugin of that phase (several sections: several plugins, in order)
    --- request: METHOD URI              (GET / when absent)
    --- more_headers                     (request headers, one "Name: value" per line)
    --- status: N                        (200 when absent)
    --- response_body                    (the exact body; a trailing newline is kept...)
    --- response_body chomp              (... or not)
    --- response_headers                 ("Name: value" must be there; "Name:" absent)

usage: compat.py bundle OUT CASE...          writes the bundle: block N under the domain cN.compat
       compat.py cli DYNACODE BUNDLE CASE... runs every block through `dynacode run`
       compat.py http PORT CASE...           runs every block against nginx on 127.0.0.1:PORT
Each check prints "ok - ..." or "FAIL - ..."; the exit status is 1 when one failed.
"""
import http.client
import json
import subprocess
import sys

PHASES = ("rewrite", "access", "content", "header_filter", "body_filter", "log")


def parse(paths):
    blocks = []
    for path in paths:
        cur = None
        section = None
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("=== "):
                    cur = {"title": line[4:].strip(), "file": path, "plugins": [],
                           "request": ("GET", "/"), "headers": [], "status": 200,
                           "body": None, "resp_headers": []}
                    blocks.append(cur)
                    section = None
                    continue
                if cur is None:
                    continue
                if line.startswith("--- "):
                    head = line[4:].strip()
                    name, _, value = head.partition(":")
                    name, value = name.strip(), value.strip()
                    section = name
                    if name in PHASES:
                        cur["plugins"].append([name, ""])
                    elif name == "request":
                        method, _, uri = value.partition(" ")
                        cur["request"] = (method, uri or "/")
                    elif name == "status":
                        cur["status"] = int(value)
                    elif name in ("response_body", "response_body chomp"):
                        cur["body"] = ""
                        cur["chomp"] = name.endswith("chomp")
                    elif name not in ("mirrors", "more_headers", "response_headers"):
                        raise SystemExit("%s: %s: unknown section %s" % (path, cur["title"], name))
                    continue
                if section in PHASES:
                    cur["plugins"][-1][1] += line
                elif section == "more_headers" and line.strip():
                    n, _, v = line.partition(":")
                    cur["headers"].append((n.strip(), v.strip()))
                elif section == "response_headers" and line.strip():
                    n, _, v = line.partition(":")
                    cur["resp_headers"].append((n.strip(), v.strip() if v.strip() else None))
                elif section and section.startswith("response_body"):
                    cur["body"] += line
    for b in blocks:
        if b.get("chomp") and b["body"].endswith("\n"):
            b["body"] = b["body"][:-1]
    return blocks


def host_of(i):
    return "c%d.compat" % i


def bundle(blocks):
    domains = []
    for i, b in enumerate(blocks):
        plugins = [{"name": "%s-%d" % (ph, k), "phase": ph, "code": code}
                   for k, (ph, code) in enumerate(b["plugins"])]
        domains.append({"name": "^c%d\\.compat$" % i, "plugins": plugins})
    return {"general": {"status": "enabled"}, "domains": domains}


def check(b, where, status, headers, body):
    """headers: list of (lower-case name, value)"""
    problems = []
    if status != b["status"]:
        problems.append("status %d, expected %d" % (status, b["status"]))
    if b["body"] is not None and body != b["body"]:
        problems.append("body %r, expected %r" % (body, b["body"]))
    got = {}
    for n, v in headers:
        got.setdefault(n.lower(), []).append(v)
    for n, v in b["resp_headers"]:
        vals = got.get(n.lower())
        if v is None and vals:
            problems.append("header %s present (%r), expected absent" % (n, vals))
        elif v is not None and (not vals or v not in vals):
            problems.append("header %s is %r, expected %r" % (n, vals, v))
    label = "%s: %s (%s)" % (b["file"].rsplit("/", 1)[-1], b["title"], where)
    if problems:
        print("FAIL - %s: %s" % (label, "; ".join(problems)))
        return False
    print("ok - %s" % label)
    return True


def dechunk(body):
    """The body of a chunked answer, as a client reads it."""
    out = b""
    while True:
        size, _, rest = body.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            return out
        out += rest[:n]
        body = rest[n + 2:]


def run_cli(dynacode, bundle_path, blocks):
    good = True
    for i, b in enumerate(blocks):
        method, uri = b["request"]
        cmd = [dynacode, "run", "--host", host_of(i), "--method", method, "--uri", uri]
        for n, v in b["headers"]:
            cmd += ["--header", "%s: %s" % (n, v)]
        cmd.append(bundle_path)
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        out = p.stdout
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        try:
            status = int(lines[0].split(" ")[1])
        except (IndexError, ValueError):
            print("FAIL - %s: no answer (exit %d): %s" % (b["title"], p.returncode,
                                                          p.stderr.decode()[-300:]))
            good = False
            continue
        headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
        if any(n.lower() == "transfer-encoding" and v.lower() == "chunked" for n, v in headers):
            body = dechunk(body)
        good &= check(b, "dynacode run", status, headers, body.decode("utf-8", "replace"))
    return good


def run_http(port, blocks):
    good = True
    for i, b in enumerate(blocks):
        method, uri = b["request"]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        hdrs = {"Host": host_of(i)}
        hdrs.update(dict(b["headers"]))
        c.request(method, uri, headers=hdrs)
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        good &= check(b, "nginx", r.status, r.getheaders(), body)
        c.close()
    return good


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    cmd = argv[1]
    if cmd == "bundle":
        with open(argv[2], "w") as f:
            json.dump(bundle(parse(argv[3:])), f, indent=1)
        return 0
    if cmd == "cli":
        return 0 if run_cli(argv[2], argv[3], parse(argv[4:])) else 1
    if cmd == "http":
        return 0 if run_http(int(argv[2]), parse(argv[3:])) else 1
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
