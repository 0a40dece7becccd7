"""Read a user log with HTCondor's own reader and print every event as JSON.

Usage: read_log.py LOG. Prints one JSON list: for each event its type number and
name, cluster, proc, timestamp, HTCondor's re-serialisation of the event (str(e)),
and every field of the event ClassAd (nested ClassAds as objects, unevaluated
expressions as {"expr": text}).
"""
import json
import sys

import classad2
import htcondor2


def plain(value):
    if isinstance(value, classad2.ClassAd):
        return {key: plain(value[key]) for key in value.keys()}
    if isinstance(value, classad2.ExprTree):
        return {"expr": str(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"other": repr(value)}


events = []
for event in htcondor2.JobEventLog(sys.argv[1]).events(stop_after=0):
    events.append({
        "type": int(event.type),
        "type_name": event.type.name,
        "cluster": event.cluster,
        "proc": event.proc,
        "timestamp": event.timestamp,
        "text": str(event),
        "fields": {key: plain(event[key]) for key in event},
    })
print(json.dumps(events))
