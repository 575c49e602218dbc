package jqexpr

// prelude redefines, ahead of every expression's own definitions, the
// builtins that can build or walk a large value in one call, so each checks
// what it is given first (a call, once made, cannot be interrupted). A
// definition made by the expression itself still wins, as in jq. Each
// `_pollrelay_b_X` is defined before X and so still means the builtin.
// Builtins written in jq (match, sub, pick, …) are copied from gojq's
// builtin.jq, because gojq resolves the names inside them among the
// builtins only. Only the definitions an expression uses are compiled.
const prelude = `
def _pollrelay_b_tostring: tostring; def tostring: _pollrelay_value | _pollrelay_b_tostring;
def _pollrelay_b_tojson: tojson; def tojson: _pollrelay_value | _pollrelay_b_tojson;
def _pollrelay_b__tohtml: _tohtml; def _tohtml: _pollrelay_value | _pollrelay_b__tohtml;
def _pollrelay_b__touri: _touri; def _touri: _pollrelay_value | _pollrelay_b__touri;
def _pollrelay_b__tourid: _tourid; def _tourid: _pollrelay_value | _pollrelay_b__tourid;
def _pollrelay_b__tocsv: _tocsv; def _tocsv: _pollrelay_value | _pollrelay_b__tocsv;
def _pollrelay_b__totsv: _totsv; def _totsv: _pollrelay_value | _pollrelay_b__totsv;
def _pollrelay_b__tosh: _tosh; def _tosh: _pollrelay_value | _pollrelay_b__tosh;
def _pollrelay_b__tobase64: _tobase64; def _tobase64: _pollrelay_value | _pollrelay_b__tobase64;
def _pollrelay_b__tobase64d: _tobase64d; def _tobase64d: _pollrelay_value | _pollrelay_b__tobase64d;
def _pollrelay_b_format($f): format($f); def format($f): _pollrelay_value | _pollrelay_b_format($f);
def _pollrelay_b_flatten: flatten; def flatten: _pollrelay_value | _pollrelay_b_flatten;
def _pollrelay_b_flatten($d): flatten($d); def flatten($d): _pollrelay_value | _pollrelay_b_flatten($d);
def _pollrelay_b_add: add; def add: _pollrelay_value | _pollrelay_b_add;
def add(f): [f] | add;
def _pollrelay_b_join($x): join($x); def join($x): _pollrelay_join($x) | _pollrelay_b_join($x);
def _pollrelay_b_implode: implode; def implode: _pollrelay_value | _pollrelay_b_implode;
def _pollrelay_b_explode: explode; def explode: _pollrelay_scaled(16) | _pollrelay_b_explode;
def _pollrelay_b_fromjson: fromjson; def fromjson: _pollrelay_scaled(16) | _pollrelay_b_fromjson;
def _pollrelay_b_tonumber: tonumber; def tonumber: _pollrelay_number | _pollrelay_b_tonumber;
def _pollrelay_b_split($s): split($s); def split($s): _pollrelay_split($s) | _pollrelay_b_split($s);
def _pollrelay_b_transpose: transpose; def transpose: _pollrelay_transpose | _pollrelay_b_transpose;
def _pollrelay_b_sort: sort; def sort: _pollrelay_value | _pollrelay_b_sort;
def _pollrelay_b_unique: unique; def unique: _pollrelay_value | _pollrelay_b_unique;
def _pollrelay_b_min: min; def min: _pollrelay_value | _pollrelay_b_min;
def _pollrelay_b_max: max; def max: _pollrelay_value | _pollrelay_b_max;
def sort_by(f): _pollrelay_value | _sort_by(map([f]) | _pollrelay_value);
def group_by(f): _pollrelay_value | _group_by(map([f]) | _pollrelay_value);
def unique_by(f): _pollrelay_value | _unique_by(map([f]) | _pollrelay_value);
def min_by(f): _pollrelay_value | _min_by(map([f]) | _pollrelay_value);
def max_by(f): _pollrelay_value | _max_by(map([f]) | _pollrelay_value);
def _pollrelay_b_contains($x): contains($x); def contains($x): _pollrelay_pair($x) | _pollrelay_b_contains($x);
def _pollrelay_b_inside($x): inside($x); def inside($x): _pollrelay_pair($x) | _pollrelay_b_inside($x);
def _pollrelay_b_indices($x): indices($x); def indices($x): _pollrelay_pair($x) | _pollrelay_b_indices($x);
def _pollrelay_b_index($x): index($x); def index($x): _pollrelay_pair($x) | _pollrelay_b_index($x);
def _pollrelay_b_rindex($x): rindex($x); def rindex($x): _pollrelay_pair($x) | _pollrelay_b_rindex($x);
def _pollrelay_b_bsearch($x): bsearch($x); def bsearch($x): _pollrelay_value | _pollrelay_arg($x) | _pollrelay_b_bsearch($x);
def _pollrelay_b_setpath($p; $v): setpath($p; $v); def setpath($p; $v): _pollrelay_path($p) | _pollrelay_b_setpath($p; $v);
def _pollrelay_b_delpaths($ps): delpaths($ps); def delpaths($ps): _pollrelay_paths($ps) | _pollrelay_b_delpaths($ps);
def _pollrelay_b_assign(p; $x): _assign(p; $x); def _assign(p; $x): reduce path(p) as $q (.; _pollrelay_path($q)) | _pollrelay_b_assign(p; $x);
def _pollrelay_b_modify(p; f): _modify(p; f); def _modify(p; f): reduce path(p) as $q (.; _pollrelay_path($q)) | _pollrelay_b_modify(p; f);
def _add($a; $b): _pollrelay_add($a; $b);
def _multiply($a; $b): _pollrelay_mul($a; $b);
def _subtract($a; $b): _pollrelay_sub($a; $b);
def _divide($a; $b): _pollrelay_div($a; $b);
def del(f): delpaths([path(f)]);
def pick(f): . as $v | reduce path(f) as $p (null; setpath($p; $v | getpath($p)));
def fromstream(f):
  foreach f as $pv (
    null;
    if .e then null end |
    $pv as [$p, $v] |
    if $pv | length == 2 then
      setpath(["v"] + $p; $v) |
      setpath(["e"]; $p | length == 0)
    else
      setpath(["e"]; $p | length == 1)
    end;
    if .e then .v else empty end
  );
def match($re; $flags): _pollrelay_match($flags) | _match($re; $flags; false)[];
def match($re):
  if $re | type == "array" then match($re[0]; $re[1]) else match($re; null) end;
def capture($re; $flags): match($re; $flags) | .captures | _captures;
def capture($re):
  if $re | type == "array" then capture($re[0]; $re[1]) else capture($re; null) end;
def scan($re; $flags):
  match($re; $flags + "g") |
  if .captures == [] then
    .string
  else
    [.captures[].string]
  end;
def scan($re): scan($re; null);
def splits($re; $flags):
  .[foreach (match($re; $flags + "g"), null) as {$offset, $length}
      (null; {start: .next, end: $offset, next: $offset + $length})];
def splits($re): splits($re; null);
def split($re; $flags): [splits($re; $flags)];
def sub($re; str; $flags):
  reduce match($re; $flags) as {$offset, $length, $captures}
    ({s: ., r: []};
      reduce ($captures | _captures | str) as $s
        (.i = 0; .r[.i] += .s[.next:$offset] + $s | .i += 1) |
      .next = $offset + $length) | .r[] + .s[.next:] // .s;
def sub($re; str): sub($re; str; null);
def gsub($re; str; $flags): sub($re; str; $flags + "g");
def gsub($re; str): sub($re; str; "g");
def INDEX(stream; idx_expr):
  reduce stream as $row ({}; .[$row | idx_expr | tostring] = $row);
def INDEX(idx_expr): INDEX(.[]; idx_expr);
def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);
.`
