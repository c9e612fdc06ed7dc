"""``python -m pipelines``: see ``pipelines.cli``.

Once the command is done the process ends without tearing the interpreter
down: the exit handlers run and the streams are flushed, then ``os._exit``.
Finalizing the modules and objects TensorFlow and Beam leave behind took about
a second of every command, after its last output was written.
"""

import atexit
import os
import sys

from pipelines.cli import main

code = main()
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code or 0)
