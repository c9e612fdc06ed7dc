"""No code from data: the ``transforms.py`` that ``init`` drafts runs nothing but
its definitions, whatever the file names, column names and values hold.

The generator (``init._module_source``) is tested directly, on many drafted
column lists of arbitrary text (quotes, triple quotes, backslashes, NUL, line
breaks, astral characters): the module parses, its top level holds only the
import of the recipes, literal constants, ``__all__`` and function definitions,
executing it imports nothing else, and the names come back exactly. Two real
``run``s cover the cases that were measured: a CSV whose name ends the old
docstring and calls ``os.system``, and a file whose header and values hold NUL
bytes.
"""

import ast
import os
import re
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import datasets
from pipelines.commands.init import Choice, _identifier, _module_source
from tests.conftest import PROJECT_ROOT, run_cli

# The file name measured running ``touch`` during run, validate and train.
HOSTILE_NAME = 'p""";__import__("os").system("touch PWNED_BY_FILENAME");"""x.csv'
PWNED = "PWNED_BY_FILENAME"
FEATURE_KINDS = ("number", "vocabulary", "hashed", "timestamp", "timestamp_text", "presence",
                 "skipped", "key")
LABEL_KINDS = ("label_classes", "label_class_ids", "label_number")

# What breaks out of a literal, a docstring or a comment, and text of every kind.
_FRAGMENTS = ['"', "'", '"""', "'''", "\\", "\\n", "\x00", "\n", "\r", "\r\n", "#", "{}",
              "\u2028", "\ufeff", "\U0001f600", "\U00010348", ");__import__('os')#",
              "coding: latin-1"]
_TEXT = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=4)),
                 max_size=6).map("".join)


def _fixed_docstrings(source: str) -> tuple[str | None, ...]:
    tree = ast.parse(source)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    return (ast.get_docstring(tree), *(ast.get_docstring(f) for f in functions))


_PLAIN = {label: _fixed_docstrings(_module_source(
    "x.csv", [Choice("x", "label_number" if label else "number", "")], "x" if label else None))
    for label in (False, True)}


@st.composite
def _drafts(draw) -> tuple[str, list[Choice], str | None]:
    """(train_input, choices, label) as init hands them to the generator."""
    columns = draw(st.lists(_TEXT, min_size=1, max_size=6, unique=True))
    label = draw(st.one_of(st.none(), st.sampled_from(columns)))
    choices = [Choice(column,
                      draw(st.sampled_from(LABEL_KINDS if column == label else FEATURE_KINDS)),
                      why=draw(_TEXT), optional=draw(st.booleans()),
                      buckets=draw(st.integers(64, 8192)), classes=draw(st.integers(2, 20)))
               for column in columns]
    return draw(_TEXT), choices, label


def _top_level_is_definitions_only(tree: ast.Module) -> None:
    """The docstring, ``from transforms import recipes``, assignments of literals
    to names, and plain function definitions: nothing that calls anything."""
    docstring, *body = tree.body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    imports = [node for node in body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [(i.module, [a.name for a in i.names]) for i in imports] == [
        ("transforms", ["recipes"])]
    for node in body:
        if isinstance(node, ast.Assign):
            assert [type(t) for t in node.targets] == [ast.Name]
            ast.literal_eval(node.value)  # raises on anything but a literal
        elif isinstance(node, ast.FunctionDef):
            # Definition time evaluates decorators, defaults and annotations.
            assert not node.decorator_list and not node.args.defaults
            annotations = [a.annotation for a in node.args.args] + [node.returns]
            assert all(isinstance(a, ast.Name) for a in annotations)
        else:
            assert node in imports, ast.dump(node)


def _function_calls_only_recipes(tree: ast.Module) -> None:
    """``preprocessing_fn`` names nothing but its inputs, its outputs, the
    recipes and ``LABEL_KEY``, and calls nothing but a recipe and
    ``outputs.update``: a line the data wrote in it would show."""
    [function] = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    for node in ast.walk(ast.Module(body=function.body[1:], type_ignores=[])):
        if isinstance(node, ast.Name):
            assert node.id in ("inputs", "outputs", "recipes", "LABEL_KEY"), node.id
        elif isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Attribute), ast.dump(node)
            assert (node.func.value.id, node.func.attr == "update") in (
                ("recipes", False), ("outputs", True)), ast.dump(node)


class _Recipes:
    """Stands in for ``transforms.recipes``: records each call, returns a token."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, recipe: str):
        def call(*args, **kwargs):
            self.calls.append(recipe)
            if recipe == "timestamp_features":
                return {f"{kwargs['name']}_hour_sin": object()}
            return object()
        return call


class _Inputs(dict):
    """The raw features, recording which ones the ``preprocessing_fn`` reads."""

    def __init__(self):
        super().__init__()
        self.read = []

    def __getitem__(self, column):
        self.read.append(column)
        return object()


def _execute(source: str) -> tuple[dict, list, _Recipes]:
    """Runs ``source`` as a module with no builtins but ``dict`` and an
    ``__import__`` that records every import: a call the data smuggled in
    (``__import__("os")``, ``open``) is recorded or fails."""
    imported, recipes = [], _Recipes()

    def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
        imported.append((name, tuple(fromlist or ())))
        return types.SimpleNamespace(recipes=recipes)

    namespace = {"__builtins__": {"__import__": recording_import, "dict": dict},
                 "__name__": "drafted_transforms"}
    exec(compile(source, "transforms.py", "exec"), namespace)  # noqa: S102 - the test's point
    return namespace, imported, recipes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(draft=_drafts())
def test_the_drafted_module_runs_nothing_but_its_definitions_and_keeps_every_name(draft):
    train_input, choices, label = draft
    source = _module_source(train_input, choices, label)
    tree = ast.parse(source)
    _top_level_is_definitions_only(tree)
    _function_calls_only_recipes(tree)
    # The docstrings are fixed text: no user string in them.
    assert _fixed_docstrings(source) == _PLAIN[label is not None]
    namespace, imported, recipes = _execute(source)
    assert not recipes.calls  # importing defines; only preprocessing_fn calls recipes
    used = [c.column for c in choices
            if c.kind not in ("skipped", "key") and c.kind not in LABEL_KINDS]
    assert namespace["SERVING_INPUTS"] == tuple(used)
    assert namespace["DRAFTED_FROM"] == train_input
    assert namespace["LABEL_KEY"] == (_identifier(label) if label is not None else None)
    assert namespace["LABEL_INPUTS"] == ()
    inputs = _Inputs()
    outputs = namespace["preprocessing_fn"](inputs)
    # It reads the raw columns it uses by their exact names, in the file's order.
    read = [c.column for c in choices if c.kind not in ("skipped", "key")]
    assert list(dict.fromkeys(inputs.read)) == read
    assert imported == [("transforms", ("recipes",))]  # at import, and none since
    assert (namespace["LABEL_KEY"] in outputs) == (label is not None)
    assert all(key.isascii() and key.isidentifier() for key in outputs)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> dict:
    """A zero-code ``run`` of a file named to end the old docstring and call
    ``os.system``, whose header and values hold NUL bytes, from a working
    directory of its own (where the measured ``touch`` wrote its file)."""
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    data.mkdir()
    train = data / HOSTILE_NAME
    train.write_bytes(b"si\x00ze,\x00colour,label\n"
                      + b"".join(b"%d,%s\x00,%d\n" % (i % 7, b"rgb"[i % 3:i % 3 + 1], i % 2)
                                 for i in range(40)))
    out = str(root / "out")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = run_cli("run", "--train_input", str(train), "--label", "label",
                         "--output_dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    module = datasets.load_directory(os.path.join(out, "dataset")).transforms
    return {"root": root, "data": data, "train": str(train), "stdout": result.stdout,
            "module": module}


def test_a_file_name_that_ends_the_docstring_runs_nothing(hostile_run):
    assert [d for d in (hostile_run["root"], hostile_run["data"], PROJECT_ROOT)
            if os.path.exists(os.path.join(d, PWNED))] == []
    assert hostile_run["module"].DRAFTED_FROM == hostile_run["train"]


def test_nul_bytes_in_the_header_and_values_are_names_and_values(hostile_run):
    assert hostile_run["module"].SERVING_INPUTS == ("si\x00ze", "\x00colour")
    assert re.search(r"^read +40$", hostile_run["stdout"], re.MULTILINE)
    assert re.search(r"^rejected +0$", hostile_run["stdout"], re.MULTILINE)
