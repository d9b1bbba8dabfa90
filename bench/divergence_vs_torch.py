"""Divergence step by step: fastnn(f32) vs torch(f32) vs torch(f64) from identical weights and batches.

    PYTHONPATH=python python3 bench/divergence_vs_torch.py after    # BatchNormalization after each ReLU
    PYTHONPATH=python python3 bench/divergence_vs_torch.py before   # ... before each ReLU
    PYTHONPATH=python python3 bench/divergence_vs_torch.py plain    # no BatchNormalization

Prints the largest difference of the predicted probabilities on 2000 test images (inference
mode) after steps 1..300 of the same 128-row batches; docs/ACCURACY.md has the results.
Needs PyTorch and the full Fashion-MNIST (bench/train_fashion.py's loader).
"""
import os, sys, numpy as np, torch, fastnn
from torch import nn
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_fashion import build, load_fashion_mnist, HIDDEN
fastnn.set_num_threads(1); torch.set_num_threads(1)
bn_on = sys.argv[1] != "plain"; before = sys.argv[1] == "before"
(xtr, ytr), (xte, yte) = load_fashion_mnist()
xte_s = xte[:2000]
model = build(bn_on, 0, before)
dense = [l for l in model.layers if isinstance(l, fastnn.layers.Dense)]
def tnet(dtype):
    layers, d = [], 784
    for k, u in enumerate(HIDDEN):
        lin = nn.Linear(d, u)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(dense[k].vars["kernel"].T.copy())); lin.bias.zero_()
        bn = [nn.BatchNorm1d(u, momentum=0.01, eps=1e-3)] if bn_on else []
        layers += [lin] + (bn + [nn.ReLU()] if before else [nn.ReLU()] + bn)
        d = u
    out = nn.Linear(d, 10)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(dense[-1].vars["kernel"].T.copy())); out.bias.zero_()
    net = nn.Sequential(*layers, out).to(dtype)
    return net, torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
nets = [tnet(torch.float32), tnet(torch.float64)]
def tpred(net, dt):
    net.eval()
    with torch.no_grad():
        p = torch.softmax(net(torch.from_numpy(xte_s).to(dt)), 1).numpy()
    net.train(); return p
rng = np.random.default_rng(0)
for step in range(1, 301):
    i = rng.choice(60000, 128, replace=False)
    model.fit(xtr[i], ytr[i], epochs=1, batch_size=128, shuffle=False, verbose=0)
    for (net, opt), dt in zip(nets, (torch.float32, torch.float64)):
        opt.zero_grad()
        nn.functional.cross_entropy(net(torch.from_numpy(xtr[i]).to(dt)), torch.from_numpy(ytr[i])).backward()
        opt.step()
    if step in (1, 2, 3, 5, 10, 20, 50, 100, 200, 300):
        pf = model.predict(xte_s); p32 = tpred(nets[0][0], torch.float32); p64 = tpred(nets[1][0], torch.float64)
        print(f"step {step:3d}  |fastnn-t64| {np.abs(pf-p64).max():.2e}  |t32-t64| {np.abs(p32-p64).max():.2e}  "
              f"|fastnn-t32| {np.abs(pf-p32).max():.2e}", flush=True)
