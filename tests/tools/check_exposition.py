#!/usr/bin/env python3
"""check_exposition.py - checks a Prometheus text exposition (the status page's) against the
text format and the naming conventions, and that it exposes every metric that alert rules and a
Grafana dashboard name.

  check_exposition.py SCRAPE [--rules RULES.yml] [--dashboard DASHBOARD.json]
                      [--exprs-out FILE]

Format: every sample belongs to a family announced by a # TYPE line before it, each family's
samples are together, no family is announced twice; names and label names are snake_case
(lower case, digits, underscores), label values escaped; values are numbers.
Conventions: counters, and only counters, end in _total; time is in seconds and sizes in bytes
(no _ms, _milliseconds, _kb... in a name); a timestamp ends in _timestamp_seconds.
Histograms: per label set, the _bucket samples have increasing le bounds ending with +Inf,
cumulative (never falling) counts, +Inf equal to _count, and a _sum.
Names: every dynacode_* metric the rules' and dashboard's expressions name is exposed.
--exprs-out writes every expression of the rules and the dashboard into a rules file (each as a
recording rule, dashboard variables replaced by plain values), for promtool to parse.
Prints one line per problem; exits 1 when there is one, 0 otherwise.
"""
import argparse
import json
import math
import re
import sys

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
BAD_UNITS = re.compile(r"_(ms|msec|milliseconds|us|microseconds|ns|minutes|hours|kb|kib|mb|mib|gb|kilobytes|megabytes)(_|$)")
METRIC_REF = re.compile(r"\bdynacode_[a-z0-9_]+\b")

problems = []


def problem(msg):
    problems.append(msg)
    print("problem: " + msg)


def parse_labels(text, line):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            problem("bad labels: " + line)
            return None
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)]
    return None


def le_value(v):
    return math.inf if v == "+Inf" else float(v)


def check_scrape(text):
    types, order, samples = {}, [], []
    if not text.endswith("\n"):
        problem("the exposition does not end with a newline")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                problem("bad TYPE line: " + line)
                continue
            if parts[2] in types:
                problem("family announced twice: " + parts[2])
            types[parts[2]] = parts[3]
            order.append(parts[2])
            continue
        if line.startswith("#") or not line:
            problem("unexpected line: %r" % line)
            continue
        m = SAMPLE.match(line)
        if not m:
            problem("not a sample: " + line)
            continue
        name, labels = m.group(1), parse_labels(m.group(3) or "", line)
        if labels is None:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            problem("value not a number: " + line)
            continue
        fam = family_of(name, types)
        if fam is None:
            problem("sample without a # TYPE before it: " + line)
            continue
        if order[-1] != fam:
            problem("samples of %s are not together: %s" % (fam, line))
        samples.append((fam, name, labels, value, line))

    for fam, kind in types.items():
        if not NAME.match(fam):
            problem("name not snake_case: " + fam)
        if (kind == "counter") != fam.endswith("_total"):
            problem("%s is a %s: only counters end in _total" % (fam, kind))
        if BAD_UNITS.search(fam):
            problem("%s: not in base units (seconds, bytes)" % fam)
        if re.search(r"(timestamp|_at)(_|$)", fam) and not fam.endswith("_timestamp_seconds"):
            problem("%s: a timestamp ends in _timestamp_seconds" % fam)
    for fam, name, labels, value, line in samples:
        for k in labels:
            if not NAME.match(k):
                problem("label not snake_case: %s in %s" % (k, line))
        if types[fam] == "counter" and value < 0:
            problem("negative counter: " + line)

    # histograms, per label set without le
    hist = {}
    for fam, name, labels, value, line in samples:
        if types[fam] != "histogram":
            continue
        key = (fam, tuple(sorted((k, v) for k, v in labels.items() if k != "le")))
        h = hist.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                problem("bucket without le: " + line)
                continue
            h["buckets"].append((le_value(labels["le"]), value, line))
        elif name == fam + "_sum":
            h["sum"] = value
        elif name == fam + "_count":
            h["count"] = value
        else:
            problem("a histogram's sample is not _bucket, _sum or _count: " + line)
    for (fam, key), h in hist.items():
        b = h["buckets"]
        where = "%s%s" % (fam, dict(key))
        if not b or b[-1][0] != math.inf:
            problem(where + ": the buckets do not end with le=\"+Inf\"")
        for (le0, c0, _), (le1, c1, line) in zip(b, b[1:]):
            if le1 <= le0:
                problem(where + ": le not increasing at " + line)
            if c1 < c0:
                problem(where + ": bucket counts not cumulative at " + line)
        if h["sum"] is None or h["count"] is None:
            problem(where + ": no _sum or _count")
        elif b and b[-1][1] != h["count"]:
            problem(where + ": +Inf bucket %g != _count %g" % (b[-1][1], h["count"]))
    exposed = {name for _, name, _, _, _ in samples}
    return types, samples, exposed, len(hist)


def dashboard_exprs(dash):
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "definition") and isinstance(v, str):
                    exprs.append(v)
                elif k == "query" and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(dash)
    return exprs


def plain(expr):
    """A dashboard expression with Grafana's variables replaced, so that promtool can parse it;
    None for a variable query (label_values(...)), which is not PromQL."""
    if expr.lstrip().startswith("label_values("):
        return None
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?[a-zA-Z_]+\}?", ".*", expr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scrape")
    ap.add_argument("--rules")
    ap.add_argument("--dashboard")
    ap.add_argument("--exprs-out")
    a = ap.parse_args()
    text = open(a.scrape, encoding="utf-8").read()
    types, samples, exposed, nhist = check_scrape(text)
    print("%d families, %d samples, %d histogram series" % (len(types), len(samples), nhist))

    named, exprs = {}, []
    if a.rules:
        import yaml
        doc = yaml.safe_load(open(a.rules, encoding="utf-8"))
        groups = doc.get("groups") if isinstance(doc, dict) else None
        if not groups:
            problem(a.rules + ": no groups")
        for g in groups or []:
            for r in g.get("rules") or []:
                if "alert" not in r or "expr" not in r:
                    problem("%s: a rule without alert or expr: %r" % (a.rules, r))
                    continue
                exprs.append(r["expr"])
                for m in METRIC_REF.findall(r["expr"]):
                    named.setdefault(m, "rule " + r["alert"])
    if a.dashboard:
        dash = json.load(open(a.dashboard, encoding="utf-8"))
        for e in dashboard_exprs(dash):
            p = plain(e)
            if p is not None:
                exprs.append(p)
            for m in METRIC_REF.findall(e):
                named.setdefault(m, "dashboard")
    for m, where in sorted(named.items()):
        if m not in exposed:
            problem("%s (%s) is not exposed by the status page" % (m, where))
    print("%d metric names in the rules and dashboard, all checked" % len(named))
    if a.exprs_out:
        with open(a.exprs_out, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: expressions\n    rules:\n")
            for i, e in enumerate(exprs):
                f.write("      - record: expr_%d\n        expr: %s\n" % (i, json.dumps(e)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
