"""How the jobs the test hosts run (network_job.py, autoscale_job.py) print the lines a test parses.

spark-submit runs the driver's Python unbuffered, so `print` writes a line's text and its newline in
two writes, and the JVM, logging into the same file, can put a line of its own between them. One
write per line keeps each line whole.
"""

import os
import sys


def say(line):
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (line + "\n").encode())
