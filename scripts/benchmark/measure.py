"""`measure.py OUT CMD...`: run CMD; write its wall-clock seconds, exit status and peak memory as JSON to OUT.

A child's peak RSS counts the pages of the process it was forked from: the benchmark (hundreds of MiB) starts every
contender through this small one (`python -S`), whose `RUSAGE_CHILDREN` is then the contender's own peak.
"""

import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
status = subprocess.run(sys.argv[2:]).returncode
seconds, peak_kib = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as file:
    json.dump({"process_s": seconds, "status": status, "peak_mib": peak_kib / 1024}, file)
