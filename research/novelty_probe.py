"""Probe (issue 21, item 4): can a Gaussian (Ledoit-Wolf) in the digit reader's feature space, or on
frame statistics, tell an unfamiliar input (a Fashion-MNIST item) from human and machine digits?
Results in docs/experiments.md. Run: FORENSICS_DATA=... PYTHONPATH=. python research/novelty_probe.py"""
import numpy as np, torch
from sklearn.covariance import LedoitWolf
from detectors.bundle import load_bundle, DEFAULT_BUNDLE
from detectors import reader, capture
from detectors.calibrate import sample_generator
from detectors.fonts import font_forgeries
from detectors.printscan import render_scan
from forensics.data import load_dataset
from forensics.preprocess import preprocess_image
from sklearn.datasets import load_digits
from PIL import Image
b=load_bundle(DEFAULT_BUNDLE); net=b.reader
test=load_dataset("mnist", train=False).images[:,0].numpy()
fm=load_dataset("fashion-mnist", train=False).images[:600,0].numpy()
rng=np.random.default_rng(0)
def prep(imgs):
    out=[]
    for im in imgs:
        try: out.append(preprocess_image(im))
        except Exception: pass
    return np.stack(out)
def scans(frames): return prep([render_scan(f) for f in frames])
def caps(frames):
    return prep([capture.capture(f, capture.CAPTURES[i % len(capture.CAPTURES)], rng) for i,f in enumerate(frames)])
ref_h = np.concatenate([scans(test[:1500]), caps(test[:1500])])
thr_h = np.concatenate([scans(test[2500:3500]), caps(test[2500:3500])])
mach = {g: scans(sample_generator(b.models, g, 1000, torch.Generator().manual_seed(5), 250)) for g in ("dcgan","fcgan","pixelcnn")}
mach["font"] = scans(font_forgeries(1000, rng))
def fit(x):
    f=reader.features(net, x); lw=LedoitWolf().fit(f); return f.mean(0), lw.precision_
def dist(model, x):
    mu,P=model; f=reader.features(net,x)-mu; return np.einsum("ij,jk,ik->i", f, P, f)
H=fit(ref_h); M={g: fit(v[:500]) for g,v in mach.items()}
def dm(x): return np.min([dist(m,x) for m in M.values()],0)
th=np.percentile(dist(H,thr_h), 99.5); tm=np.percentile(np.concatenate([dm(v[500:]) for v in mach.values()]), 99.5)
print("tau_h", th, "tau_m", tm)
uci=load_digits().images
uci_scans=prep([Image.fromarray((255-np.round(u*255/16)).astype(np.uint8)).resize((64,64), Image.Resampling.BICUBIC) for u in uci[:600]])
sets={"human plain test[5000:]": scans(test[5000:5600]), "human captures test[5000:]": caps(test[5000:5600]),
      "load_digits": uci_scans, "fashion": scans(fm), **{f"machine {g}": v[500:] for g,v in mach.items()}}
for name,x in sets.items():
    a=dist(H,x); c=dm(x); unf=(a>th)&(c>tm)
    print(f"{name:30s} n={len(x)} far_from_human {np.mean(a>th):.3f} far_from_machine {np.mean(c>tm):.3f} unfamiliar {np.mean(unf):.3f}")
import zlib
def stats(x):
    x=x.astype(np.float64)/255
    cov=(x>0.5).mean((1,2)); mean=x.mean((1,2))
    comp=np.array([len(zlib.compress((f*255).astype(np.uint8).tobytes(),9))*8/784 for f in x])
    grad=np.abs(np.diff(x,axis=1)).mean((1,2))+np.abs(np.diff(x,axis=2)).mean((1,2))
    _,p=reader.features_and_probs(net,(x*255).astype(np.uint8)); ent=-(p*np.log(p+1e-12)).sum(1)
    return np.stack([cov,mean,comp,grad,ent],1)
def fit2(x):
    f=stats(x); lw=LedoitWolf().fit(f); return f.mean(0), lw.precision_
def dist2(m,x):
    mu,P=m; f=stats(x)-mu; return np.einsum("ij,jk,ik->i", f, P, f)
H2=fit2(ref_h); M2={g: fit2(v[:500]) for g,v in mach.items()}
def dm2(x): return np.min([dist2(m,x) for m in M2.values()],0)
th2=np.percentile(dist2(H2,thr_h), 99.5); tm2=np.percentile(np.concatenate([dm2(v[500:]) for v in mach.values()]), 99.5)
print("stats: tau_h", th2, "tau_m", tm2)
for name,x in sets.items():
    a=dist2(H2,x); c=dm2(x); unf=(a>th2)&(c>tm2)
    print(f"{name:30s} far_from_human {np.mean(a>th2):.3f} far_from_machine {np.mean(c>tm2):.3f} unfamiliar {np.mean(unf):.3f}")
for name,x in [("ref_h",ref_h),("thr_h",thr_h)]+list(sets.items()):
    s=stats(x); print(f"{name:30s}", np.round(np.percentile(s,50,0),3), np.round(np.percentile(s,99,0),3))
