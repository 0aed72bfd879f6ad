#!/usr/bin/env python3
"""Times reading a scene's seven full-grid variables with netCDF4-python (libnetcdf/HDF5, C).

    python3 decode_netcdf4.py FILE [RUNS]      (RUNS defaults to 3)

Each run opens the file, reads nersc_sar_primary, nersc_sar_secondary, sar_incidenceangle,
distance_map, SIC, SOD and FLOE completely into numpy arrays (no masking) and closes it.
Prints one line per run, then `RESULT key=value ...`: minimum and median time in seconds,
peak resident memory (ru_maxrss) in bytes, and the interpreter's resident memory before the
first run (the part of the peak that is not the reading).
"""
import resource
import sys
import time

import netCDF4
import numpy as np

VARIABLES = ["nersc_sar_primary", "nersc_sar_secondary", "sar_incidenceangle", "distance_map",
             "SIC", "SOD", "FLOE"]


def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    path = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base_rss = rss_now()
    times = []
    nbytes = 0
    for run in range(1, runs + 1):
        t0 = time.perf_counter()
        ds = netCDF4.Dataset(path, "r")
        ds.set_auto_mask(False)
        arrays = [np.asarray(ds.variables[name][:]) for name in VARIABLES]
        ds.close()
        dt = time.perf_counter() - t0
        nbytes = sum(a.nbytes for a in arrays)
        checksum = float(sum(a.ravel()[a.size // 2] for a in arrays[:4]))
        print(f"run {run}: netCDF4 read {dt:.3f} s, {arrays[0].size} pixels, checksum {checksum:.4f}")
        times.append(dt)
        del arrays
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(f"RESULT min_s={times[0]:.4f} median_s={times[len(times) // 2]:.4f} "
          f"peak_rss_bytes={peak} base_rss_bytes={base_rss} decoded_bytes={nbytes} "
          f"netcdf={netCDF4.__netcdf4libversion__} hdf5={netCDF4.__hdf5libversion__}")


if __name__ == "__main__":
    main()
