#!/usr/bin/env python3
"""telemetry.py - generates the demo's sample telemetry: scripts/telemetry.csv, a few simulated
sensors of a small plant (a greenhouse, a cold store, a boiler room), one reading per second in
turn. The numbers are made up here (a daily curve plus seeded noise), so the file is reproducible
byte for byte:
    scripts/telemetry.py            rewrite scripts/telemetry.csv
    scripts/telemetry.py --check    exit 1 if the committed file differs from what this generates
    scripts/telemetry.py -o FILE    write elsewhere ('-' for stdout)
Columns: second (since the start of the recording), sensor, temperature_c, humidity_pct.
"""
import argparse
import io
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "telemetry.csv")

SEED = 7
ROWS = 180  # three minutes at one reading per second; the demo loops over the file if it runs longer

# name, mean temperature (C), daily swing (C), mean relative humidity (%), humidity swing (%)
SENSORS = (
    ("greenhouse", 24.0, 6.0, 68.0, 12.0),
    ("cold-store", 3.5, 0.8, 85.0, 4.0),
    ("boiler-room", 31.0, 3.0, 35.0, 6.0),
)

# The recording is sped up: one simulated day passes in this many rows, so the curves move visibly.
DAY_ROWS = 600


def generate():
    rng = random.Random(SEED)
    out = io.StringIO()
    out.write("second,sensor,temperature_c,humidity_pct\n")
    for second in range(ROWS):
        name, t_mean, t_swing, h_mean, h_swing = SENSORS[second % len(SENSORS)]
        phase = 2.0 * math.pi * second / DAY_ROWS
        temp = t_mean + t_swing * math.sin(phase) + (rng.random() - 0.5) * t_swing * 0.1
        hum = h_mean - h_swing * math.sin(phase) + (rng.random() - 0.5) * 2.0
        hum = min(100.0, max(0.0, hum))
        out.write("%d,%s,%.2f,%.1f\n" % (second, name, temp, hum))
    return out.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default=DEFAULT_OUT, help="file to write, '-' for stdout")
    ap.add_argument("--check", action="store_true", help="compare with the existing file instead of writing")
    args = ap.parse_args()
    text = generate()
    if args.check:
        try:
            with open(args.output, encoding="ascii") as f:
                same = f.read() == text
        except OSError as e:
            print("telemetry.py: %s" % e, file=sys.stderr)
            return 1
        if not same:
            print("telemetry.py: %s differs from the generator's output" % args.output, file=sys.stderr)
        return 0 if same else 1
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="ascii") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
