"""Runs a user's module file whose imports are not all installed, as a TFX
module file's are.

A TFX module file serves two components: Transform calls its
``preprocessing_fn``, Trainer its ``run_fn``, and its top imports ``tfx`` (and
whatever else the Trainer half needs) for the second. The ``preprocessing_fn``
needs none of that, so a module the file itself imports that is not installed
is replaced by a stand-in while the file runs, and one line on stderr names
it. Every use of the stand-in (a call, iterating it, a base class) raises a
one-line ``MissingImportError`` naming what was used and the module it comes
from: at load time if the file's top level uses it, while TFT traces the
``preprocessing_fn`` if that does. Only the file's own imports are stood in
for: an import made by an installed library (which may try one of its
optional dependencies) fails as it always does, and so does an installed
module that fails to import.
"""

import importlib.abc
import importlib.machinery
import sys
import types

from pipelines.errors import UserError

__all__ = ["MissingImportError", "load_module_file"]


class MissingImportError(UserError):
    """The code used something from a module that is not installed."""


def load_module_file(path: str, name: str, source: str) -> types.ModuleType:
    """Runs ``source`` (the file at ``path``) as the module ``name``, in
    ``sys.modules`` under that name; a module it imports that is not installed
    is a stand-in (see the module's docstring).

    Raises:
      MissingImportError: the file's top level uses a module that is not installed.
      UserError: an installed module it imports fails to import.
    """
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # what the code defines can be found by its module name
    finder = _StandInFinder(module, path)
    sys.meta_path.append(finder)  # last: asked only when no installed module matches
    try:
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - the user's code
    except ImportError as error:
        raise UserError(f"{path} cannot be loaded: {error}") from None
    finally:
        sys.meta_path.remove(finder)
        # The stand-ins stay bound in the module, not importable by other code.
        for stand_in in finder.stood_in:
            sys.modules.pop(stand_in, None)
    if finder.missing:
        names = ", ".join(finder.missing)
        print(f"note: {path} imports {names}, not installed here; loaded without it, as "
              f"only a TFX module file's Trainer half needs it (using it fails, naming it)",
              file=sys.stderr)
    return module


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a stand-in for a module that the file's own code imports and no
    other finder found."""

    def __init__(self, module: types.ModuleType, path: str):
        self._globals = module.__dict__
        self._path = path
        self.stood_in: list[str] = []  # every module name, submodules too
        self.missing: list[str] = []  # the outermost of them, as messages name them

    def find_spec(self, fullname, path=None, target=None):
        if not self._imported_by_the_file():
            return None
        self.stood_in.append(fullname)
        parent = fullname.rpartition(".")[0]
        if parent not in self.stood_in:
            self.missing.append(fullname)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def _imported_by_the_file(self) -> bool:
        # The frame that asked, past the import machinery's own frames.
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
            frame = frame.f_back
        return frame is not None and frame.f_globals is self._globals

    def create_module(self, spec):
        root = next(m for m in self.missing
                    if spec.name == m or spec.name.startswith(m + "."))
        return _StandInModule(spec.name, root, self._path)

    def exec_module(self, module):
        pass


class _StandInModule(types.ModuleType):
    """A module that is not installed: each name taken from it is a ``_Missing``."""

    def __init__(self, name: str, root: str, path: str):
        super().__init__(name)
        self.__path__ = []  # a package, so that its submodules import as stand-ins too
        self._root, self._file = root, path

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Missing(f"{self.__name__}.{attribute}", self._root, self._file)


class _Missing:
    """Something from a module that is not installed: any use of it but naming
    one of its attributes raises ``MissingImportError``."""

    __slots__ = ("_name", "_root", "_file")

    def __init__(self, name: str, root: str, path: str):
        self._name, self._root, self._file = name, root, path

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Missing(f"{self._name}.{attribute}", self._root, self._file)

    def __repr__(self) -> str:
        return f"<{self._name}: {self._root} is not installed>"

    def _fail(self, *args, **kwargs):
        raise MissingImportError(
            f"{self._file} uses {self._name}, but {self._root} is not installed here: "
            f"install it, or write the preprocessing_fn without it")

    __call__ = __iter__ = __getitem__ = __bool__ = __len__ = __enter__ = _fail
    __mro_entries__ = __instancecheck__ = __subclasscheck__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _fail
