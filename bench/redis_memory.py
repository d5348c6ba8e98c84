#!/usr/bin/python3
"""Redis memory by kind of driftwatch key: `bench/redis_memory.py PORT`. Groups every key by its
kind (the part of the name after the hash tag, window and report keys without their times)
and prints the keys and the bytes MEMORY USAGE gives for each kind. Uses Debian's python3-redis
(/usr/bin/python3)."""
import re
import sys
from collections import defaultdict

import redis


def kind(key):
    k = key.decode(errors="replace")
    k = re.sub(r"^\{dw:[^}]*:\d+\}", "{part}", k)   # partition keys
    k = re.sub(r"^\{dw:[^}]*\}", "{group}", k)      # group keys
    k = re.sub(r":-?\d+$", ":<start>", k)
    k = re.sub(r":[^:]+:<start>$", ":<model>:<start>", k)
    return k


def main():
    r = redis.Redis(port=int(sys.argv[1]))
    count, size = defaultdict(int), defaultdict(int)
    for key in r.scan_iter(count=1000):
        kd = kind(key)
        count[kd] += 1
        size[kd] += r.memory_usage(key, samples=0) or 0
    used = int(r.info("memory")["used_memory"])
    print(f"used_memory {used} bytes; keys {sum(count.values())}, key bytes {sum(size.values())}")
    for kd in sorted(size, key=size.get, reverse=True):
        print(f"  {kd:40s} {count[kd]:8d} keys {size[kd]:12d} bytes")


if __name__ == "__main__":
    main()
