;; `nap(ms) -> ms`: sleeps through wasi:clocks and wasi:io/poll; reusable,
;; unlike a command component, whose `run` may only be called once.
(component
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))))
  (alias export $poll "pollable" (type $pollable))
  (alias export $poll "[method]pollable.block" (func $block))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type $p))
    (export "pollable" (type $pp (eq $p)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $pp))))))
  (alias export $clock "subscribe-duration" (func $subscribe))
  (core func $block' (canon lower (func $block)))
  (core func $subscribe' (canon lower (func $subscribe)))
  (core func $drop (canon resource.drop $pollable))
  (core module $M
    (import "" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "" "block" (func $block (param i32)))
    (import "" "drop" (func $drop (param i32)))
    (func (export "nap") (param $ms i32) (result i32)
      (local $p i32)
      (local.set $p (call $subscribe (i64.mul (i64.extend_i32_u (local.get $ms)) (i64.const 1000000))))
      (call $block (local.get $p))
      (call $drop (local.get $p))
      (local.get $ms)))
  (core instance $m (instantiate $M (with "" (instance
    (export "subscribe" (func $subscribe')) (export "block" (func $block')) (export "drop" (func $drop))))))
  (func (export "nap") (param "ms" u32) (result u32) (canon lift (core func $m "nap"))))
