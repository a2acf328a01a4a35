"""bench.faults builds its own arguments for bench.load's and bench.coldchain's preparation and
stack: every argument those read must be there, or the benchmark fails after minutes of setup
(it did once, when bench.coldchain gained `--relay`)."""

import ast
import inspect
import textwrap

from bench import coldchain, faults, load


def attributes_read_from_args(*functions) -> set[str]:
    names = set()
    for function in functions:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute | ast.Name)
                and ast.unparse(node.value) in ("args", "self.args")
            ):
                names.add(node.attr)
    return names


def test_the_faults_benchmark_gives_the_shared_setup_every_argument_it_reads():
    read = attributes_read_from_args(coldchain.prepare, load.prepare, load.stack_env, load.Stack)
    assert read >= {"relay", "sensors", "tags", "server"}
    given = vars(faults.parse_args([]))
    assert sorted(read - given.keys()) == []
