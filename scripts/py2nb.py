"""Convert between a percent-format script and a clean notebook (no outputs, project kernel).

    python scripts/py2nb.py notebooks/03_x.py            # -> notebooks/03_x.ipynb
    python scripts/py2nb.py --reverse notebooks/03_x.ipynb  # -> notebooks/03_x.py (for editing)

Cells start with `# %%` (code) or `# %% [markdown]` (markdown; each line starts with `# `).
A code cell may carry tags: `# %% tags=["gallery"]` (the README gallery takes that cell's figure).
"""
import json
import re
import sys

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def py_to_nb(text):
    cells, kind, lines, tags = [], None, [], []

    def flush():
        if kind is None:
            return
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            body = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
            cells.append({"cell_type": "markdown", "metadata": {}, "source": "\n".join(body)})
        else:
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {"tags": tags} if tags else {},
                          "outputs": [], "source": "\n".join(lines)})

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
            m = re.search(r"tags=\[(.*?)\]", line)
            tags = [t.strip().strip("'\"") for t in m.group(1).split(",")] if m else []
        else:
            lines.append(line)
    flush()
    for c in cells:  # nbformat stores source as a list of lines
        src = c["source"]
        c["source"] = [ln + "\n" for ln in src.split("\n")[:-1]] + [src.split("\n")[-1]] if src else []
    return {"cells": cells, "metadata": {"kernelspec": KERNELSPEC,
                                         "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def nb_to_py(nb):
    out = []
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c["cell_type"] == "markdown":
            out.append("# %% [markdown]\n" + "\n".join(("# " + ln) if ln else "#" for ln in src.split("\n")))
        else:
            tags = c.get("metadata", {}).get("tags")
            out.append("# %%" + (f" tags={json.dumps(tags)}" if tags else "") + "\n" + src)
    return "\n\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1] == "--reverse":
        path = sys.argv[2]
        open(path[:-6] + ".py", "w").write(nb_to_py(json.load(open(path))))
    else:
        for path in sys.argv[1:]:
            nb = py_to_nb(open(path).read())
            for i, c in enumerate(nb["cells"]):
                c["id"] = f"c{i:03d}"
            with open(path[:-3] + ".ipynb", "w") as f:
                json.dump(nb, f, indent=1, ensure_ascii=False)
                f.write("\n")
