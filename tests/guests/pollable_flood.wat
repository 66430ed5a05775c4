;; A hostile guest: `flood` asks the host for timer pollables in a loop
;; (`wasi:clocks/monotonic-clock.subscribe-duration`) and never drops them,
;; until the host's resource table refuses one.
(component
  (import "wasi:io/poll@0.2.3" (instance $poll (export "pollable" (type (sub resource)))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.3" (instance $clock
    (export "pollable" (type (eq $pollable)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $pollable))))))
  (core func $sub (canon lower (func $clock "subscribe-duration")))
  (core module $M
    (import "" "sub" (func $sub (param i64) (result i32)))
    (func (export "flood") (result i32)
      (local $i i32)
      (loop $l
        (drop (call $sub (i64.const 1000000000)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l))
      (local.get $i)))
  (core instance $m (instantiate $M (with "" (instance (export "sub" (func $sub))))))
  (func (export "flood") (result u32) (canon lift (core func $m "flood"))))
