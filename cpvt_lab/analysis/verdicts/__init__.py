"""What turns rows into verdicts: intervals over seeds and test images (``stats``), the paper's claims judged
on them (``claims``), and the test-set term of a difference from the runs' predictions (``test_set_term``)."""
