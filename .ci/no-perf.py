#!/usr/bin/python3
"""Run a command where perf_event_open is refused as containers refuse it.

Docker's default seccomp profile answers perf_event_open with EPERM. This
loads the same rule (everything else allowed) and execs the command, which
inherits the filter; no root needed (libseccomp sets no_new_privs).

Usage: no-perf.py COMMAND [ARG...]
"""
import errno
import os
import sys

import seccomp  # Debian: python3-seccomp

if len(sys.argv) < 2:
    sys.exit(__doc__)
rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
rules.add_rule(seccomp.ERRNO(errno.EPERM), "perf_event_open")
rules.load()
os.execvp(sys.argv[1], sys.argv[1:])
