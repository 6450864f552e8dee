"""What the runs mean: `stats` (means and paired t CIs), `analysis` (summaries per method and
domain), `findings` (what the committed tables say, as sentences), `summary` (notebook 05: the
paper's tables beside ours, the claims) and `plots/` (every figure)."""
