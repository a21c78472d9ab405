"""Report writing: tables (CSV + Markdown), figures (matplotlib, Agg), report.md/.html."""
