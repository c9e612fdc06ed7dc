"""What ``pipelines.beam_speedups`` changes in Beam must not change what Beam
produces: pickles a remote runner reads stay bz2, a stage's descriptor holds
every component its transforms name, cached views still see every option.

Each test runs in an interpreter of its own. They switch Beam's process-wide
pickler (dill, cloudpickle, the compression) and build pipelines; done in the
test process, that left state the interpreter's last garbage collection
crashed on at exit (a segmentation fault after every test had passed)."""

import os
import subprocess
import sys
import textwrap

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _passes_in_a_fresh_interpreter(source: str) -> None:
    """Run SOURCE with ``python -c`` from the project root; it must exit 0
    having reached its last line."""
    program = textwrap.dedent(source) + "\nprint('reached the end')\n"
    result = subprocess.run([sys.executable, "-c", program], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reached the end" in result.stdout


def test_only_a_pipeline_run_in_this_process_is_pickled_for_it():
    _passes_in_a_fresh_interpreter("""
        from apache_beam.options.pipeline_options import PipelineOptions
        from pipelines import beam_speedups

        def runs_here(*flags):
            return beam_speedups.runs_in_this_process(PipelineOptions(list(flags)))

        assert runs_here()
        assert runs_here("--runner=DirectRunner", "--direct_running_mode=multi_threading")
        assert not runs_here("--runner=DataflowRunner")
        assert not runs_here("--runner=PortableRunner")
        assert not runs_here("--direct_running_mode=multi_processing", "--direct_num_workers=2")
    """)


def test_pickles_of_a_local_pipeline_use_zlib_and_of_worker_processes_bz2():
    _passes_in_a_fresh_interpreter("""
        import base64, bz2, zlib
        from apache_beam.internal import pickler
        from pipelines import beam_speedups

        payload = {"numbers": list(range(1000))}
        beam_speedups.install()
        beam_speedups.new_pipeline([])
        local = pickler.dumps(payload)
        assert zlib.decompress(base64.b64decode(local))
        processes = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
        beam_speedups.new_pipeline(processes)
        sent = pickler.dumps(payload)
        assert bz2.decompress(base64.b64decode(sent))  # what Beam's own workers decompress
        # Either format reads back, whichever way the process compresses now.
        for flags in ([], processes):
            beam_speedups.new_pipeline(flags)
            assert pickler.loads(local) == payload
            assert pickler.loads(sent) == payload
    """)


def test_cloudpickle_is_the_default_pickler_unless_one_is_named():
    _passes_in_a_fresh_interpreter("""
        from pipelines import beam_speedups

        pipeline = beam_speedups.new_pipeline([])
        assert pipeline.options.get_all_options()["pickle_library"] == "cloudpickle"
        pipeline = beam_speedups.new_pipeline(["--pickle_library", "dill"])
        assert pipeline.options.get_all_options()["pickle_library"] == "dill"
    """)


def test_a_cached_view_sees_what_another_view_sets():
    _passes_in_a_fresh_interpreter("""
        from apache_beam.options.pipeline_options import (
            PipelineOptions, StandardOptions, TypeOptions)
        from pipelines import beam_speedups

        beam_speedups.install()
        options = PipelineOptions(["--runner=DirectRunner"])
        first = options.view_as(TypeOptions)
        assert options.view_as(TypeOptions) is first
        options.view_as(StandardOptions).streaming = True
        assert options.view_as(StandardOptions).streaming is True
        first.runtime_type_check = True
        assert options.view_as(TypeOptions).runtime_type_check is True
    """)


def test_stage_descriptors_hold_the_coders_their_transforms_name():
    """A pipeline with state, a combiner, a side input and a GroupByKey runs
    on descriptors pruned to their stages, and gives Beam's answer."""
    _passes_in_a_fresh_interpreter("""
        import apache_beam as beam
        import apache_beam.testing.util as beam_testing

        from pipelines import beam_speedups

        TOTAL = beam.DoFn.StateParam(
            beam.transforms.userstate.CombiningValueStateSpec("total", sum))


        class Running(beam.DoFn):
            def process(self, element, total=TOTAL):
                total.add(element[1])
                yield element[0], total.read()


        assert beam_speedups.install()
        with beam_speedups.new_pipeline([]) as pipeline:
            numbers = pipeline | beam.Create([("a", 1), ("b", 2), ("a", 3)])
            offset = pipeline | "Offset" >> beam.Create([10])
            sums = numbers | beam.CombinePerKey(sum)
            running = (numbers | beam.ParDo(Running())
                       | beam.Map(lambda kv, o: (kv[0], kv[1] + o),
                                  beam.pvalue.AsSingleton(offset)))
            grouped = numbers | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, sorted(vs)))
            beam_testing.assert_that(sums, beam_testing.equal_to([("a", 4), ("b", 2)]),
                                     label="Sums")
            beam_testing.assert_that(running | beam.Map(lambda kv: kv[0] + str(kv[1] > 10)),
                                     beam_testing.equal_to(["aTrue", "aTrue", "bTrue"]),
                                     label="Running")
            beam_testing.assert_that(grouped, beam_testing.equal_to([("a", [1, 3]), ("b", [2])]),
                                     label="Grouped")
    """)


def test_only_the_program_installs_them_and_only_on_the_beam_they_were_written_for():
    _passes_in_a_fresh_interpreter("""
        import contextlib, io
        import apache_beam as beam
        from apache_beam.typehints import decorators
        from pipelines import beam_speedups, process

        # A caller of the API keeps its Beam as it was.
        process.import_the_stack()
        assert decorators.get_signature is not beam_speedups._get_signature
        # Another release: plain Beam, and one warning line.
        beam.__version__ = "2.60.0"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert beam_speedups.install() is False
        assert err.getvalue().splitlines() == [
            "warning: Apache Beam 2.60.0 is not 2.59.0, the release pipelines.beam_speedups "
            "was written for: running plain Beam"]
        assert decorators.get_signature is not beam_speedups._get_signature
        # The program, on the release they were written for: installed once.
        beam.__version__ = beam_speedups.WRITTEN_FOR
        process.become_the_program()
        process.import_the_stack()
        assert decorators.get_signature is beam_speedups._get_signature
        assert beam_speedups.install() is True
    """)
