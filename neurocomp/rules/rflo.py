"""RFLO (Murray 2019, eLife 8:e43299): random feedback and local online learning.

Rate version (the paper's; ``eprop.md`` §4), per time step with ``tau`` in steps::

    u    = W h + W_in x
    h   <- h + (-h + tanh(u)) / tau
    y    = W_out h,    err = y* - y
    p_ij <- (1 - 1/tau) p_ij + tanh'(u_i) h_j(prev) / tau       (q_ik likewise with x_k)
    dW_ij = lr_rec * (B err)_i p_ij,  dW_in likewise with q,  dW_out = lr_out * err h^T

with ``B`` fixed and random (``N(0, 1/n_out)``). A rate network runs on no chip's engine, so
both its forms are simulations: the float one, :class:`~neurocomp.reference.rflo.RfloRate`,
states the equations exactly (with the 1/T of trial-end updates);
:class:`~neurocomp.reference.rflo_fixed.RfloRateFixed` is the same rule with its learning path in
a chip's fixed-point formats, read from a profile.

Spiking version (random e-prop without readout filtering): ``e_ji = psi_j * z_bar_i`` used
directly, ``dW_ji = -lr * L_j * e_ji``, ``L = B err`` with B random. It lowers like e-prop
(:mod:`neurocomp.rules.eprop`) with the eligibility filter removed: on loihi2 the tag holds
``x1 * y3`` of the step (``dt = 2^-a * u0 * x1 * y3 - u0 * t``); on programmable cores the
exact form runs; ReckOn's learning signal is symmetric, so RFLO's random feedback does not
map onto it (the DRC says so); loihi1 has no graded third factor.
"""
