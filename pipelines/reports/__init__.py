"""Reading a finished run, without Beam: its directory (``run_dir``), its
statistics and anomalies (``anomalies``) explained in plain language
(``explanations``), the run summary (``summary``), the validation history
(``history``) and the HTML report (``html``).
"""

__all__ = ["anomalies", "explanations", "history", "html", "run_dir", "summary"]
