# %% [markdown]
# # Batch screening in a notebook
#
# Screen a few thousand intake forms from a CSV file, look at what failed and why, and see how
# often each finding fires.
#
# Open `batch_notebook.ipynb` in Jupyter (JupyterLab, Notebook or VS Code), in an environment
# with `hipscreen[pandas,progress,plot]` (`python3 tasks.py test` sets one up in `.venv`).
# `batch_notebook.py` is the same notebook as a plain script in percent format (kept in sync
# with jupytext; run it with `python examples/batch_notebook.py`). The test suite runs both.
#
# The data file `data/intake_sample.csv`, beside this notebook, holds 3,000 synthetic forms
# written by `make_intake_csv.py`, some of them with the mistakes real files have.

# %%
import tempfile
import textwrap
from pathlib import Path

import matplotlib

if "__file__" in globals():  # run as a script (not in Jupyter): draw into files, not windows
    matplotlib.use("Agg")

import pandas as pd
from pandas.io.formats.style import Styler

import hipscreen
from hipscreen import assess_frame, assess_many, screen_csv

# Jupyter starts the kernel in the notebook's folder; a script knows where it is.
HERE = Path(__file__).parent if "__file__" in globals() else Path.cwd()
intake = pd.read_csv(HERE / "data" / "intake_sample.csv", dtype=str, keep_default_na=False)


def left_aligned(frame: pd.DataFrame) -> Styler:
    """Jupyter right-aligns table cells, which suits numbers but not words: these read left."""
    header = [{"selector": "th", "props": [("text-align", "left")]}]
    return frame.style.set_properties(**{"text-align": "left"}).set_table_styles(header)


left_aligned(intake.head())

# %% [markdown]
# Each column is a form field path (`tightness.hip_flexors`, `strength.gluteus_maximus.left`,
# `symptoms` as `knee_pain;hip_pain`). An empty cell means "not given", never "normal".
#
# `assess_frame` screens every row and returns one result row per input row, with the input's
# index. Rows that cannot be screened say why; they never stop the batch.

# %%
results = assess_frame(intake, progress=True)
print(f"{len(results):,} rows: {results['ok'].sum():,} screened, {(~results['ok']).sum():,} failed")
left_aligned(
    results[["client_id", "ok", "finding_ids", "highest_severity", "referral_urgency"]].head()
)

# %% [markdown]
# ## What failed, and why
#
# Every problem names the column, the value found and what is allowed.

# %%
failed = results[~results["ok"]]
for _, row in failed.head(5).iterrows():
    # Long messages are shortened at a word boundary, never mid-word.
    message = textwrap.shorten(row["error"], width=150, placeholder=" …")
    print(f"row {row['row']} ({row['client_id']}): {message}")

# %% [markdown]
# ## Referrals first
#
# A red flag means "see a clinician", not "exercise": list those rows before anything else.

# %%
referred = results[results["referral_urgency"].notna()]
print(referred["referral_urgency"].value_counts().to_string())

# %% [markdown]
# ## One row per finding
#
# The long form suits analysis: counts, cross-tabulations, joins back to the intake.

# %%
findings = assess_frame(intake, long=True)
prevalence = findings["finding_id"].value_counts() / results["ok"].sum()
print(prevalence.head(8).round(3).to_string())

# %%
pd.crosstab(findings["finding_id"], findings["confidence"]).head(8)

# %% [markdown]
# ## The same with Python objects
#
# `assess_many` takes forms as dicts (or `IntakeForm` models) and gives full `Assessment`
# objects; in Jupyter the result and each assessment show as HTML tables.

# %%
forms = [
    {"client_id": "ann", "tightness": {"iliopsoas": "severe"}, "strength": {"gluteus_maximus": 3}},
    {"client_id": "bob", "strength": {"hip_extensors": "good"}, "symptoms": ["knee_pain"]},
    {"client_id": "cat", "age": 230},
]
batch = assess_many(forms)
batch  # noqa: B018 - a notebook cell shows its last value

# %%
print(batch.summary())
first = batch[0]
assert isinstance(first, hipscreen.Assessment)
first  # noqa: B018

# %% [markdown]
# ## The whole file, streamed, with a prevalence chart
#
# `screen_csv` is what `hipscreen batch intake.csv -o results.csv` runs: it streams the file in
# chunks, writes one result row per input row and the failed rows (with their original cells) to
# a separate file, and returns a summary that can plot how often each finding fires.

# %%
out = Path(tempfile.mkdtemp())
report = screen_csv(HERE / "data" / "intake_sample.csv", out / "results.csv")
print(report.summary)
print("failed rows in", report.errors.name)

# %%
ax = report.summary.plot(top=12)
ax.figure.savefig(out / "prevalence.png")
