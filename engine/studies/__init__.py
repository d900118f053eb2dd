"""Studies: groups of runs measured to answer one question, planned, run on the job queue, read back from the
store, judged and explained.

    knobs.py          one record per setting: what it changes, hence the figure that judges it, and how a sweep
                      covers it (values, labels, order, notes)
    judging.py        which figure judges what differs between runs; runs of one engine plan
    statistics.py     each figure's noise: bootstrap interval, trace windows, drift between fresh processes
    record.py         a stored study: kind, plan, state, membership (point -> job -> run); one id scheme, one
                      loader (``load_study``), one not-found error; what is missing, resume
    group.py          a group of runs on the job queue (a view over its stored study): submitted, polled, cancelled
    sweeps/           knob sweeps (front door: ``from engine.studies import sweeps``)
    ladder/           the precision ladder
    batch_sweep/      static engines against one dynamic engine across batch sizes
    autotune/         the search for the fastest configuration within constraints
    dynamic_cost.py   what a dynamic-shape engine costs at the shape a run measured
    localisation/     where a low-precision build breaks, and what it costs to fix

Each study kind's package is its front door (pages and tests call ``sweeps.plan_sweep``, ``ladder.verdict``);
modules of the engine import the module that defines a name.
"""
