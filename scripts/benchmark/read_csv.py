"""`read_csv.py pandas|pyarrow FILE`: one CSV reader alone in a process, for the side by side.

pandas: its C parser, straight to float32 (as `thermometer.data.read_readings` reads); pyarrow: `pyarrow.csv`,
multi-threaded, its columns typed float32, as NumPy arrays. Prints `read_s`, the seconds of the read (the import
excluded), and the rows read; the benchmark measures the process's peak memory.
"""

import importlib
import json
import sys
import time

reader, path = sys.argv[1:]
module = importlib.import_module("pyarrow.csv" if reader == "pyarrow" else "pandas")  # before the clock starts
start = time.perf_counter()
if reader == "pyarrow":
    types = module.ConvertOptions(column_types=dict.fromkeys(["t_u", "t_c"], "float32"))
    table = module.read_csv(path, read_options=module.ReadOptions(use_threads=True), convert_options=types)
    columns = [column.to_numpy() for column in table.columns]
else:
    frame = module.read_csv(path, engine="c", dtype="float32")
    columns = [frame[name].to_numpy() for name in frame.columns]
print(json.dumps({"read_s": time.perf_counter() - start, "rows": len(columns[0])}))
