"""Differential oracle: HTCondor 24.0's Python bindings expand a submit file into job ads.

usage: oracle.py FILE.sub [CLUSTER]   (run with the submit file's directory as cwd)
       oracle.py --batch FILE.sub...
Prints a JSON list of ads, each {attribute: unparsed ClassAd expression}.

htcondor.Submit only honours the first queue statement, so a file with several queue
statements is expanded one statement at a time: the text before the k-th statement (minus
the earlier queue statements) plus that statement, with ProcId continuing from the
previous statement. That is what condor_submit does for one cluster.
"""
import json, re, sys, warnings
warnings.simplefilter("ignore")
import htcondor  # noqa: E402

def split_queues(text):
    lines = text.splitlines()
    body, stmts, i = [], [], 0
    while i < len(lines):
        l = lines[i]
        if re.match(r'^\s*queue\b(?!\s*=)', l, re.I):
            block = [l]
            if l.rstrip().count('(') > l.rstrip().count(')'):
                i += 1
                while i < len(lines):
                    block.append(lines[i])
                    if lines[i].lstrip().startswith(')'):
                        break
                    i += 1
            stmts.append((list(body), block))
        else:
            body.append(l)
        i += 1
    return stmts

def expand(path, cluster=1):
    text = open(path).read()
    out, proc = [], 0
    for body, block in split_queues(text):
        sub = htcondor.Submit("\n".join(body + block) + "\n")
        for ad in sub.jobs(clusterid=cluster, procid=proc, qdate=1700000000):
            out.append({k: str(ad.lookup(k)) for k in ad.keys()})
            proc += 1
    return out

def main():
    if sys.argv[1] == "--batch":
        # --batch FILE...: one JSON object, file -> list of ads or {"error": message}
        result = {}
        for path in sys.argv[2:]:
            try:
                result[path] = expand(path)
            except Exception as e:  # the binding raises several error types
                result[path] = {"error": str(e)}
        print(json.dumps(result, sort_keys=True))
        return
    cluster = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(json.dumps(expand(sys.argv[1], cluster), indent=1, sort_keys=True))

main()
