import sys

from asr.threads import bound_openmp_spinning

# The suite runs under the thread policy of the `asr` command: bounded OpenMP
# spinning, set before torch is first imported (asr/threads.py).
bound_openmp_spinning()

if sys.argv[1:2] == ["threads"]:
    # `python -m benchmarks threads ...`: one training alone against two at once (benchmarks/threads.py)
    from benchmarks.threads import main as threads_main

    sys.exit(threads_main(sys.argv[2:]))

from benchmarks.suite import main  # noqa: E402

sys.exit(main())
