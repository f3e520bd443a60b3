"""The graded exercises, one module per notebook; each registers its cases with grading.register."""
