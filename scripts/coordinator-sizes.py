#!/usr/bin/env python3
# The size limits of the coordinator's layout (CONVENTIONS.md): files over 600 lines before a
# trailing `#[cfg(test)] mod tests`, and API handlers (`#[utoipa::path]` fns) over 40 lines.
import os,re,sys
root=os.path.join(os.path.dirname(os.path.abspath(__file__)),'..','coordinator','src')
root=os.path.normpath(root)
big=[];handlers=[]
for d,_,fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p=os.path.join(d,f); lines=open(p).read().split('\n')
        # non-test lines: cut at '#[cfg(test)]' followed by mod
        n=len(lines)
        for i,l in enumerate(lines):
            if l.startswith('#[cfg(test)]') and i+1<n and lines[i+1].startswith('mod '):
                n=i;break
        if n>600: big.append((n,p[len(root)+1:]))
        # handlers: fns after #[utoipa::path
        i=0
        while i<len(lines):
            if lines[i].startswith('#[utoipa::path'):
                j=i
                while j<len(lines) and not re.match(r'(pub(\(crate\))? )?async fn ',lines[j]): j+=1
                k=j
                while k<len(lines) and lines[k]!='}': k+=1
                ln=k-j+1
                if ln>40: handlers.append((ln,p[len(root)+1:],lines[j].split('(')[0]))
                i=k
            i+=1
print('files over 600 non-test lines:')
for n,p in sorted(big,reverse=True): print(f'  {n:5} {p}')
print('handlers over 40 lines:')
for n,p,h in sorted(handlers,reverse=True): print(f'  {n:5} {p} {h}')
