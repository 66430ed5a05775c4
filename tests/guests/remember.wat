;; A guest with state in every place a store can hold it, for the reset
;; tests: `remember(x)` writes x over a data segment's word in memory and
;; into a mutable global; `recall()` reads both back; `grow()` grows the
;; memory; `keep()` creates an owned handle and keeps it (in the table).
(component
  (type $r (resource (rep i32)))
  (core func $new (canon resource.new $r))
  (core module $M
    (import "" "new" (func $new (param i32) (result i32)))
    (memory (export "mem") 1)
    (global $g (mut i32) (i32.const 7))
    (data (i32.const 100) "\05\00\00\00")
    (func (export "remember") (param i32)
      (i32.store (i32.const 100) (local.get 0))
      (i32.store (i32.const 60000) (local.get 0))
      (global.set $g (local.get 0)))
    (func (export "recall") (result i32)
      (i32.store (i32.const 200) (i32.load (i32.const 100)))
      (i32.store (i32.const 204) (global.get $g))
      (i32.store (i32.const 208) (i32.load (i32.const 60000)))
      (i32.const 200))
    (func (export "grow") (drop (memory.grow (i32.const 1))))
    (func (export "keep") (drop (call $new (i32.const 1)))))
  (core instance $m (instantiate $M (with "" (instance (export "new" (func $new))))))
  (func (export "remember") (param "x" u32) (canon lift (core func $m "remember")))
  (func (export "recall") (result (tuple u32 u32 u32))
    (canon lift (core func $m "recall") (memory (core memory $m "mem"))))
  (func (export "grow") (canon lift (core func $m "grow")))
  (func (export "keep") (canon lift (core func $m "keep"))))
