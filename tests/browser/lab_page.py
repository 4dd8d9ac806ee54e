"""Drive JupyterLab in headless Chromium the way a student does: open, Run All, read outputs.

Only the page is inspected (what a student sees), never the server's copy of the notebook.
JupyterLab marks every output by its mime type; errors (tracebacks) and anything written to
stderr both render as ``application/vnd.jupyter.stderr``. Of those, errors and warnings are
problems; other stderr text (a progress bar, a log line) is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

#: Switches for Chromium on a closed network, in a container, with no display.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STDERR_MIME = "application/vnd.jupyter.stderr"
#: A prompt like "[12]:" means the cell ran; "[ ]:" never ran; "[*]:" queued or running.
RAN_PROMPT = re.compile(r"\[\d+\]")
#: Words that make a stderr output an error (IPython prints a SyntaxError without "Traceback").
ERROR_WORDS = re.compile(r"Traceback|\w+(Error|Exception)\b")
#: A warning's category, as ``warnings`` prints it ("file:line: UserWarning: message").
WARNING_WORDS = re.compile(r"\w*Warning\b")

# True once the notebook has a kernel that is idle: before that the toolbar says "No Kernel".
_KERNEL_READY_JS = """() => {
  const name = document.querySelector('.jp-NotebookPanel .jp-Toolbar-kernelName');
  const status = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  return !!name && !/No Kernel/i.test(name.textContent)
      && !!status && status.dataset.status === 'idle';
}"""

# True when Run All has finished: no prompt is queued/running ("[*]"), some cell has run (the
# outputs were cleared, so that is this run), and the kernel is idle. After an error JupyterLab
# un-queues the remaining cells, so a failed run finishes too.
_RUN_FINISHED_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  const status = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  return prompts.length > 0 && !prompts.some(t => t.includes('*'))
      && prompts.some(t => /\\[\\d+\\]/.test(t)) && !!status && status.dataset.status === 'idle';
}"""

# The open notebooks, and one record per code cell of the first, in notebook order:
# prompt, source, and the stderr outputs.
_READ_CELLS_JS = """(mime) => ({
  panels: document.querySelectorAll('.jp-NotebookPanel').length,
  cells: [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell => ({
    prompt: (cell.querySelector('.jp-InputArea-prompt')?.textContent || '').trim(),
    source: cell.querySelector('.jp-InputArea-editor .cm-content')?.innerText || '',
    stderr: [...cell.querySelectorAll(`.jp-OutputArea-output[data-mime-type="${mime}"]`)]
      .map(out => out.innerText),
  })),
})"""


@dataclass(frozen=True)
class CellReport:
    """What the page shows for one code cell after Run All.

    index: position among the code cells (0-based); prompt: e.g. "[3]:" or "[ ]:";
    source: the cell's code; stderr: texts of its stderr outputs (errors included).
    """

    index: int
    prompt: str
    source: str
    stderr: tuple[str, ...]

    @property
    def ran(self) -> bool:
        """Whether the cell was executed (its prompt holds an execution count)."""
        return bool(RAN_PROMPT.search(self.prompt))

    @property
    def has_error(self) -> bool:
        """Whether one of its stderr outputs is an error (a traceback), not just a warning."""
        return any(ERROR_WORDS.search(text) for text in self.stderr)


def launch_chromium(playwright: Playwright, executable: Path,
                    profile_dir: Path) -> BrowserContext:
    """Start headless Chromium from ``executable`` with a fresh profile in ``profile_dir``.

    Playwright's own browser downloads are never used (``playwright install`` is not needed).
    Close the returned context to end the browser.
    """
    return playwright.chromium.launch_persistent_context(
        str(profile_dir), executable_path=str(executable), args=CHROMIUM_ARGS, headless=True,
        viewport={"width": 1280, "height": 900})


def notebook_path(name: str) -> str:
    """The URL path that opens notebook ``name`` alone, in a fresh JupyterLab workspace.

    JupyterLab restores the last layout of a workspace (the server keeps it), so a second
    notebook opened in the default workspace would share the page with the first.
    """
    workspace = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    return f"lab/workspaces/{workspace}/tree/{name}"


def open_notebook(page: Page, url: str, timeout_s: float) -> None:
    """Go to the notebook's ``url`` and wait until its kernel has started and is idle.

    Raises TimeoutError (naming the page, never the token) if that takes over ``timeout_s``.
    """
    try:
        page.goto(url, timeout=timeout_s * 1000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
        page.wait_for_function(_KERNEL_READY_JS, timeout=timeout_s * 1000, polling=250)
    except PlaywrightTimeoutError as error:
        address = url.split("?", 1)[0]  # drop the token
        raise TimeoutError(f"{address} did not show the notebook with an idle kernel within "
                           f"{timeout_s:.0f} s") from error


def run_all_cells(page: Page) -> None:
    """Click Run > Run All Cells in the menu bar, as a student would."""
    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')


def wait_until_finished(page: Page, timeout_s: float) -> None:
    """Wait until no cell is queued or running and the kernel is idle again.

    Raises TimeoutError listing the cells still queued or running after ``timeout_s``.
    """
    try:
        page.wait_for_function(_RUN_FINISHED_JS, timeout=timeout_s * 1000, polling=500)
    except PlaywrightTimeoutError as error:
        busy = [str(cell.index + 1) for cell in read_cells(page) if "*" in cell.prompt]
        raise TimeoutError(f"Run All had not finished after {timeout_s:.0f} s; code cells "
                           f"still queued or running: {', '.join(busy) or 'none'}") from error


def read_cells(page: Page) -> list[CellReport]:
    """A ``CellReport`` for every code cell on the page, in order.

    Raises RuntimeError unless exactly one notebook is open (cells of two would mix).
    """
    page_state = page.evaluate(_READ_CELLS_JS, STDERR_MIME)
    if page_state["panels"] != 1:
        raise RuntimeError(f"expected one open notebook in JupyterLab, found "
                           f"{page_state['panels']}; open it with notebook_path()")
    return [CellReport(index=i, prompt=r["prompt"], source=r["source"],
                       stderr=tuple(r["stderr"]))
            for i, r in enumerate(page_state["cells"])]


def problems(cells: list[CellReport]) -> list[str]:
    """One line per problem a student would see: a cell that did not run, an error, a warning.

    Empty cells need not run (JupyterLab does not execute them). Other stderr text, such as a
    progress bar (tqdm writes to stderr), is not a problem.
    """
    found = []
    for cell in cells:
        first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
        where = f"code cell {cell.index + 1} ({first_line[:60]!r})"
        if cell.source.strip() and not cell.ran:
            found.append(f"{where} did not run (prompt {cell.prompt!r})")
        for text in cell.stderr:
            lines = [line for line in text.splitlines() if line.strip()] or [""]
            if ERROR_WORDS.search(text):  # a traceback ends with the exception and message
                found.append(f"{where} shows an error: {lines[-1][:200]!r}")
            elif WARNING_WORDS.search(text):  # "file:line: Category: message" comes first
                warning = next(line for line in lines if WARNING_WORDS.search(line))
                found.append(f"{where} shows a warning: {warning[:200]!r}")
    return found


# Every output of code cell number ``index`` (0-based among code cells), as the page shows it.
_CELL_OUTPUTS_JS = """(index) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-CodeCell')[index];
  return cell ? [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText) : null;
}"""


def replace_cell_source(page: Page, index: int, source: str) -> None:
    """Click into code cell ``index``'s editor, select its text and type ``source`` over it
    (one insertion, so the editor does not re-indent the lines)."""
    editor = page.locator(".jp-Notebook .jp-CodeCell").nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(source)


def run_cell_and_next(page: Page, index: int, timeout_s: float) -> None:
    """Run code cell ``index`` and then the cell after it (Shift+Enter twice, as a student
    would: the first runs the answer and moves on, the second runs the check)."""
    page.locator(".jp-Notebook .jp-CodeCell").nth(index).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    wait_until_finished(page, timeout_s)


def cell_outputs(page: Page, index: int) -> list[str]:
    """The texts of every output of code cell ``index`` (stdout, results, errors)."""
    outputs = page.evaluate(_CELL_OUTPUTS_JS, index)
    if outputs is None:
        raise RuntimeError(f"the page has no code cell {index}")
    return outputs
