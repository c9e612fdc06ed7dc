"""``python -m pipelines``: see ``pipelines.cli``.

Once the command is done the process ends without tearing the interpreter
down: as at a normal exit, the threads that are not daemons are waited for
and the exit handlers run, the streams are flushed, then ``os._exit``.
Finalizing the modules and objects TensorFlow and Beam leave behind took about
a second of every command, after its last output was written.
"""

import atexit
import os
import sys
import threading

from pipelines.cli import main

code = main()
threading._shutdown()  # what the interpreter does first at exit: join non-daemon threads
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code or 0)
