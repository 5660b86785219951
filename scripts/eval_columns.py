#!/usr/bin/python3
"""eval_columns.py -- one tab-separated row of the base-model scripts' tables: leading fields as
given, then the policy's strict, partial, and the judge's count match, foreground and diversity
from an `evaluate --report` file.

    eval_columns.py REPORT FIELD...
"""
import json
import sys

report, *fields = sys.argv[1:]
p = json.load(open(report))["policy"]
m, j = p["metrics"], p["judge"]
print("\t".join([*fields, f"{m['shapes']['mean']:.3f}", f"{m['shapes-partial']['mean']:.3f}",
                 f"{j['count_match']['mean']:.3f}", f"{j['foreground']['mean']:.3f}", f"{j['diversity']['mean']:.3f}"]))
