"""CalcJobs and calcfunctions of aiida-ccdcgan."""
