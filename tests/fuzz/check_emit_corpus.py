"""Reads yaml_emit_tool --inputs lines on stdin; checks each dump against PyYAML (equal to
yaml.dump of the value, and loading back to it). Exit 1 on any difference, printing the first."""
import json
import sys

import yaml

checked = bad = 0
for line in sys.stdin:
    rec = json.loads(line)
    if rec["dump"] is None:
        continue
    checked += 1
    theirs = yaml.dump(rec["value"], default_flow_style=False, sort_keys=False)
    if rec["dump"] != theirs or yaml.safe_load(rec["dump"]) != rec["value"]:
        bad += 1
        if bad == 1:
            print(f"{rec['file']}: value {rec['value']!r}\n  ours   {rec['dump']!r}\n"
                  f"  pyyaml {theirs!r}")
print(f"  emitter corpus: {checked} values held against PyYAML, {bad} differ")
sys.exit(1 if bad or checked == 0 else 0)
