"""What a pickle would do with each global it names, read from its opcodes, running nothing.

The opcodes are replayed on a stack of symbols (``pickletools.genops`` decodes them; no
object is built and nothing is imported): a global is a ``Name``, a string is kept for
STACK_GLOBAL, a tuple keeps its items for the reconstructors that call or create one of
their arguments, and anything else is an opaque value. Each global is then reported with
its uses (``cairn.models.allowlist.Use``): named when pushed, called by REDUCE, INST and
OBJ, created by NEWOBJ, patched when BUILD, SETITEMS or APPENDS apply to it. Python's own
unpickler maps Python 2 names for protocols below 3, so the replay maps them the same way.

What cannot be read as a name is reported as such (``Walk.unreadable``): a malformed
stream, a global named by computed strings, an extension code, a persistent id.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
from dataclasses import dataclass, field
from typing import IO, Any

from cairn.models.allowlist import CONSTRUCTORS, Constructor, Name, Use


@dataclass
class Walk:
    """Each global a pickle names with what loading does with it, and what cannot be read."""

    uses: set[tuple[Name, Use]] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Items:
    """A tuple built on the stack, its items kept."""

    items: tuple[Any, ...]


@dataclass(frozen=True)
class _Made:
    """What calling a global (or NEWOBJ) made: ``made`` is its class as far as the replay
    knows — the class a reconstructor created, else the callee."""

    by: Name
    made: Name


@dataclass
class _Dict:
    """A dict built on the stack, and whether items were set in it."""

    filled: bool = False


_VALUE = object()  # any value the replay does not follow


def _item(items: tuple[Any, ...] | None, position: int | None) -> Any:
    if items is None or position is None or position >= len(items):
        return None
    return items[position]


def _is_dict(value: Any) -> bool:
    return isinstance(value, _Dict) or (
        isinstance(value, _Made) and str(value.by) in ("builtins.dict", "collections.OrderedDict")
    )


_TEXT_OPS = frozenset({"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "STRING",
                       "BINSTRING", "SHORT_BINSTRING"})  # fmt: skip
_FILLS = {"APPEND": Use.APPENDED, "APPENDS": Use.APPENDED, "SETITEM": Use.ITEMS_SET,
          "SETITEMS": Use.ITEMS_SET, "ADDITEMS": Use.ADDED_TO}  # fmt: skip
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def walk(stream: IO[bytes]) -> Walk:
    """The uses of every global in the first pickle of ``stream`` (what ``pickle.load``
    reads)."""
    replay = _Replay()
    try:
        for opcode, arg, _pos in pickletools.genops(stream):
            replay.step(opcode, arg)
    except Exception:  # noqa: BLE001  # whatever a malformed stream raises, it is unreadable
        replay.found.unreadable.add("<unreadable pickle>")
    return replay.found


class _Replay:
    def __init__(self) -> None:
        # As Python's unpickler keeps them: MARK saves the stack and starts a new one.
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[Any, Any] = {}
        self.protocol = 0
        self.found = Walk()

    def step(self, opcode: pickletools.OpcodeInfo, arg: Any) -> None:
        name = opcode.name
        handler = getattr(self, f"_op_{name.lower()}", None)
        if handler is not None:
            handler(arg)
        elif name in _TEXT_OPS:
            self.stack.append(arg)
        elif name in _FILLS:
            self._fill(opcode)
        elif name in _GET_OPS:
            self.stack.append(self.memo[arg])
        elif name in _PUT_OPS:
            self.memo[arg] = self.stack[-1]
        else:
            self._generic(opcode)

    # Globals: pushed, called, created.

    def _op_global(self, arg: str) -> None:
        module, _, name = arg.partition(" ")
        self._push_global(module, name)

    def _op_stack_global(self, _arg: None) -> None:
        name, module = self.stack.pop(), self.stack.pop()
        if not (isinstance(module, str) and isinstance(name, str)):
            self.found.unreadable.add("<a global named by computed strings>")
            self.stack.append(_VALUE)
            return
        self._push_global(module, name)

    def _op_inst(self, arg: str) -> None:
        self._pop_to_mark()
        module, _, name = arg.partition(" ")
        self._push_global(module, name)
        self._call(self.stack.pop(), None)

    def _op_obj(self, _arg: None) -> None:
        callee, *_args = self._pop_to_mark()
        self._call(callee, None)

    def _op_reduce(self, _arg: None) -> None:
        args = self.stack.pop()
        self._call(self.stack.pop(), args.items if isinstance(args, _Items) else None)

    def _op_newobj(self, _arg: None) -> None:
        args = self.stack.pop()
        self._create(self.stack.pop(), args != _Items(()))

    def _op_newobj_ex(self, _arg: None) -> None:
        kwargs, args = self.stack.pop(), self.stack.pop()
        empty_kwargs = isinstance(kwargs, _Dict) and not kwargs.filled
        self._create(self.stack.pop(), args != _Items(()) or not empty_kwargs)

    def _push_global(self, module: str, name: str) -> None:
        if self.protocol < 3:  # as pickle.Unpickler.find_class maps Python 2 names
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            else:
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = Name(module, name)
        self.found.uses.add((found, Use.NAME))
        self.stack.append(found)

    def _call(self, callee: Any, args: tuple[Any, ...] | None) -> None:
        if not isinstance(callee, Name):
            # A value's __call__ (a vectorized function, say) calls what it holds.
            self.found.unreadable.add("<a call of a value the pickle built>")
            self.stack.append(_VALUE)
            return
        self.found.uses.add((callee, Use.CALL))
        roles = CONSTRUCTORS.get(str(callee))
        if roles is not None and (roles.calls or roles.creates):
            self._arguments(callee, roles, args)
        position = roles.instance_of if roles is not None else None
        made = _item(args, position)
        self.stack.append(_Made(callee, made if isinstance(made, Name) else callee))

    def _arguments(self, callee: Name, roles: Constructor, args: tuple[Any, ...] | None) -> None:
        """What a reconstructor calls and creates of its arguments."""
        if args is None:
            self.found.unreadable.add(f"{callee} (its arguments cannot be read)")
            return
        created = Use.CREATE_WITH_ARGS if roles.with_args and len(args) > 1 else Use.CREATE
        for use, positions in ((Use.CALL, roles.calls), (created, roles.creates)):
            for argument in (args[i] for i in positions if i < len(args)):
                if isinstance(argument, Name):
                    self.found.uses.add((argument, use))
                elif argument is not None and not isinstance(argument, str):
                    self.found.unreadable.add(f"{callee} (given a value the pickle built)")

    def _create(self, cls: Any, with_args: bool) -> None:
        if isinstance(cls, Name):
            self.found.uses.add((cls, Use.CREATE_WITH_ARGS if with_args else Use.CREATE))
            self.stack.append(_Made(cls, cls))
        else:
            self.found.unreadable.add("<an instance of a value the pickle built>")
            self.stack.append(_VALUE)

    def _op_build(self, _arg: None) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, Name):
            self.found.uses.add((target, Use.PATCH))
            return
        if not isinstance(target, _Made):
            return
        self._restored(target.made, state)
        roles = CONSTRUCTORS.get(str(target.by))
        if roles is None or not roles.calls_state:
            return
        if isinstance(state, _Items) and state.items and isinstance(state.items[0], Name):
            self.found.uses.add((state.items[0], Use.CALL))
        else:
            self.found.unreadable.add(f"{target.by} (what its state calls cannot be read)")

    def _restored(self, made: Name, state: Any) -> None:
        """What BUILD does with ``state`` on an instance of ``made``: a ``__setstate__``
        gets it whole; otherwise a 2-tuple's second item is set with ``setattr``."""
        if state is None or _is_dict(state):
            return
        self.found.uses.add((made, Use.RESTORE_FROM_VALUE))
        pair = isinstance(state, _Items) and len(state.items) == 2
        if not pair or state.items[1] is not None:  # a value the replay did not follow may be one
            self.found.uses.add((made, Use.SET_ATTRIBUTES))

    def _fill(self, opcode: pickletools.OpcodeInfo) -> None:
        """APPEND(S), SETITEM(S) and ADDITEMS: the target stays on the stack."""
        if pickletools.markobject in opcode.stack_before:
            self._pop_to_mark()
        else:
            self._drop(len(opcode.stack_before) - 1)
        target = self.stack[-1]
        if isinstance(target, Name):
            self.found.uses.add((target, Use.PATCH))
        elif isinstance(target, _Made):
            self.found.uses.add((target.made, _FILLS[opcode.name]))
        elif isinstance(target, _Dict):
            target.filled = True

    # Tuples, whose items the reconstructors read.

    def _op_empty_tuple(self, _arg: None) -> None:
        self.stack.append(_Items(()))

    def _op_tuple(self, _arg: None) -> None:
        items = tuple(self._pop_to_mark())  # before self.stack is read: it is replaced
        self.stack.append(_Items(items))

    def _op_tuple1(self, _arg: None) -> None:
        self._tuple_of(1)

    def _op_tuple2(self, _arg: None) -> None:
        self._tuple_of(2)

    def _op_tuple3(self, _arg: None) -> None:
        self._tuple_of(3)

    def _tuple_of(self, count: int) -> None:
        items = tuple(self.stack[-count:])
        del self.stack[-count:]
        self.stack.append(_Items(items))

    # The stack and the memo.

    def _op_none(self, _arg: None) -> None:
        self.stack.append(None)

    def _op_empty_dict(self, _arg: None) -> None:
        self.stack.append(_Dict())

    def _op_mark(self, _arg: None) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def _op_pop(self, _arg: None) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_to_mark()

    def _op_dup(self, _arg: None) -> None:
        self.stack.append(self.stack[-1])

    def _op_memoize(self, _arg: None) -> None:
        self.memo[len(self.memo)] = self.stack[-1]

    def _op_proto(self, arg: int) -> None:
        self.protocol = arg

    def _op_ext1(self, arg: int) -> None:
        self.found.unreadable.add(f"<extension code {arg}>")
        self.stack.append(_VALUE)

    _op_ext2 = _op_ext4 = _op_ext1

    def _op_persid(self, _arg: Any) -> None:
        self.found.unreadable.add("<persistent id>")
        self.stack.append(_VALUE)

    def _op_binpersid(self, _arg: None) -> None:
        self.stack.pop()
        self._op_persid(None)

    def _generic(self, opcode: pickletools.OpcodeInfo) -> None:
        before = opcode.stack_before
        if pickletools.markobject in before:
            self._pop_to_mark()
            self._drop(before.index(pickletools.markobject))
        else:
            self._drop(len(before))
        self.stack.extend(_VALUE for _ in opcode.stack_after)

    def _drop(self, count: int) -> None:
        if count > len(self.stack):
            raise IndexError("the stack underflows")  # as Python's unpickler refuses
        del self.stack[len(self.stack) - count :]

    def _pop_to_mark(self) -> list[Any]:
        items, self.stack = self.stack, self.metastack.pop()
        return items
