"""How runs and factors are named for people: run folders, table headers, verdicts."""

import hashlib
import re

# Keys that say where a run's files are or how it shows progress, not what it computes: they
# may differ when a run is resumed or a sweep completed, and are no factor of a report.
NOT_RESULTS = (
    "data.root",
    "data.cache_dir",
    "reference",
    "objective",
    "logger",
    "trainer.progress_bar",
    "trainer.resume",
    "trainer.checkpoint_every_n_steps",
    "trainer.checkpoint_every_minutes",
)

# Short names for a run's folder: `cell=one,layers=2,seed=3` rather than Hydra's
# `model.cell=one,model.num_layers=2,seed=3`; other keys lose their group prefix unless
# two of them would then read alike.
SHORT_KEYS = {"model.cell": "cell", "model.num_layers": "layers"}
GROUP_PREFIXES = ("model.", "data.", "optim.", "trainer.")
DOTTED_PATH = re.compile(r"[A-Za-z_]\w*([.:][A-Za-z_]\w*)+")  # mypkg.cells.CIFG, not 0.001


def run_name(override_dirname: str) -> str:
    """A sweep run's folder name from Hydra's override_dirname (`k=v,k=v`, sorted by key)."""
    if not override_dirname:
        return "run"
    items = [item.split("=", 1) for item in split_top_level(override_dirname) if "=" in item]
    shorts = [short_key(k) for k, _ in items]
    names = [s if shorts.count(s) == 1 else k.lstrip("+~") for (k, _), s in zip(items, shorts)]
    # a folder is one name, and a backslash would be an escape in the name's override
    return ",".join(f"{n}={v}".replace("/", "_").replace("\\", "_") for n, (_, v) in zip(names, items))


# A readable name is a run's folder unless two runs of a grid would share it (values that
# read alike, `a/b` and `a_b`, or keys kept out of names, data.root), a folder of that name
# holds a run of other settings, or it is too long for a filesystem: then it is cut to
# NAME_MAX bytes and given the run's own suffix, `~` and 8 hex digits of a hash of its
# swept values — readable still, and never another run's.
NAME_MAX = 120
SUFFIX = re.compile(r"~[0-9a-f]{8}")


def too_long(name: str) -> bool:
    """Longer than NAME_MAX bytes: filesystems count a name's UTF-8 bytes (255 at most)."""
    return len(name.encode()) > NAME_MAX


def cut(name: str, size: int = NAME_MAX - 9) -> str:
    """The name's longest start of at most `size` UTF-8 bytes, never half a character."""
    return name.encode()[:size].decode("utf-8", "ignore")


def unique_name(readable: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{cut(readable)}~{digest}"


def file_stem(label: str) -> str:
    """A report file's name for a label made of swept values: no `/`, and no longer than a
    filesystem allows (cut and made unique as run folders are)."""
    stem = label.replace("/", "_").replace("\0", "_")
    return unique_name(stem, label) if too_long(stem) else stem


def readable_part(name: str) -> str:
    """A run folder's name without the unique suffix a colliding or long name gets."""
    return name[:-9] if len(name) > 9 and SUFFIX.fullmatch(name[-9:]) else name


def with_seed(run: str, seed: int) -> str:
    """The readable name of the run of the same configuration with another seed (`…,seed=3` →
    `…,seed=12`): the seed's place in a name is its key's, whatever its value."""
    items = split_top_level(readable_part(run))
    return ",".join(f"seed={seed}" if item.startswith("seed=") else item for item in items)


def readable(value) -> str:
    """A value as people read it: a class's dotted path (`mypkg.cells.CIFG`) by its name."""
    text = str(value)
    return text.replace(":", ".").rsplit(".", 1)[-1] if DOTTED_PATH.fullmatch(text) else text


def trial_label(run_dir) -> str:
    """A sweep run's name in TensorBoard's HPARAMS table, whose Trial ID column shows some
    17 characters: the swept values in the order of their columns, then the sweep's folder,
    `one · 2 · 3 · r21`. The sweep folder keeps two sweeps opened together (`--logdir
    multirun`) apart: TensorBoard merges the runs that share a trial name into one row.
    Empty for a run outside a sweep (its folder is no `k=v,…` name), which keeps its path."""
    items = split_top_level(run_dir.name)
    if not all("=" in item for item in items):
        return ""
    return " · ".join([*(readable(item.split("=", 1)[1]) for item in items), run_dir.parent.name])


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split `k=v,k=[a,b]` at the separators outside brackets and quotes: a swept list or
    dict value (`data.split_fractions=[0.8,0.1,0.1]`) stays one item."""
    items, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(depth - 1, 0)
        elif ch == sep and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


def short_key(key: str) -> str:
    """`model.num_layers` → `layers`, `optim.lr` → `lr`."""
    key = key.lstrip("+~")
    if key in SHORT_KEYS:
        return SHORT_KEYS[key]
    return key.split(".", 1)[1] if key.startswith(GROUP_PREFIXES) else key


def level_label(factor: str | None, value) -> str:
    """How a reader names a level: 'model two', '2 layers', 'lr=0.001' (no factor: the value)."""
    if factor is None:
        return str(value)
    if factor == "model.cell":
        return f"model {value}" if value in ("one", "two") else f"cell {readable(value)}"
    if factor == "model.num_layers":
        return f"{value} layer{'s' if value != 1 else ''}"
    return f"{short_key(factor)}={value}"
