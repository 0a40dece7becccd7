"""Differential-test oracle: HTCondor's own ClassAd library (classad2).

Reads JSON lines on stdin, writes one JSON line per request on stdout:
  {"op": "eval",  "expr": "...", "ad": "[...]"?, "target": "[...]"?}
      -> {"ok": true, "value": "<unparsed result>"} or {"ok": false, "error": "..."}
  {"op": "parse", "expr": "..."} -> {"ok": true, "value": "<unparsed expression>"}
  {"op": "match", "left": "[...]", "right": "[...]"}
      -> {"ok": true, "value": "true|false"} (symmetricMatch)
  {"op": "json_in", "json": "{...}"} -> {"ok": true, "value": "<repr of the parsed ad>"}
  {"op": "ad",    "ad": "[...]"} -> {"ok": true, "value": "<repr>", "old": "...", "json": "..."}
"""
import json
import sys

import classad2 as classad


def handle(req):
    op = req["op"]
    if op == "eval":
        e = classad.ExprTree(req["expr"])
        ad = classad.ClassAd(req["ad"]) if req.get("ad") else None
        target = classad.ClassAd(req["target"]) if req.get("target") else None
        return {"ok": True, "value": repr(e.simplify(ad, target))}
    if op == "parse":
        return {"ok": True, "value": repr(classad.ExprTree(req["expr"]))}
    if op == "match":
        left = classad.ClassAd(req["left"])
        right = classad.ClassAd(req["right"])
        return {"ok": True, "value": "true" if left.symmetricMatch(right) else "false"}
    if op == "json_in":
        return {"ok": True, "value": repr(classad.parseOne(req["json"], classad.ParserType.JSON))}
    if op == "ad":
        ad = classad.ClassAd(req["ad"])
        return {"ok": True, "value": repr(ad), "old": ad.printOld(), "json": ad.printJson()}
    return {"ok": False, "error": "unknown op " + op}


def main():
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            resp = handle(json.loads(line))
        except Exception as ex:  # the library raises ClassAdException and others
            resp = {"ok": False, "error": str(ex)}
        out.write(json.dumps(resp) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
