"""The README's example: build a network in Python, validate it, save and reload it."""

import neurocomp as nc

net = nc.Network(name="quickstart")
net.add(
    nc.Population("in", 100, nc.SpikeInput(rate_hz=20.0, seed=0)),
    nc.Population("rec", 200, nc.ALIF(tau_mem_ms=20.0, v_th=0.6, reset="subtract", tau_adapt_ms=500.0, beta=0.07)),
    nc.Population("out", 2, nc.LI(tau_mem_ms=20.0)),
)
init = {"init": "normal", "std": 0.1, "seed": 1}
net.add(
    nc.Projection("in", "rec", nc.init_weights(init, 200, 100)),
    nc.Projection("rec", "rec", nc.init_weights({**init, "density": 0.1, "format": "sparse"}, 200, 200), delay_steps=1),
    nc.Projection("rec", "out", nc.init_weights(init, 2, 200), plasticity=nc.RuleSpec("eprop", {"lr": 1e-3})),
)
print(net.summary())
nc.save_network(net, "quickstart.yaml")
assert nc.load_network("quickstart.yaml") == net
program = nc.compile(net, "spinnaker2")  # quantize, check design rules, place on cores
print(program.summary())
program.save("quickstart.ncp")
