;; A registry function component: `add` over two s32, and `describe` which
;; takes a record and returns an option<string>.
(component
  (core module $M
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (local.set $r (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $r))
    (data (i32.const 64) "positive")
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    ;; describe({x, y}) -> some("positive") when x + y > 0, else none
    (func (export "describe") (param i32 i32) (result i32)
      (if (i32.gt_s (i32.add (local.get 0) (local.get 1)) (i32.const 0))
        (then
          (i32.store8 (i32.const 0) (i32.const 1))
          (i32.store (i32.const 4) (i32.const 64))
          (i32.store (i32.const 8) (i32.const 8)))
        (else (i32.store8 (i32.const 0) (i32.const 0))))
      (i32.const 0)))
  (core instance $m (instantiate $M))
  (type $point (record (field "x" s32) (field "y" s32)))
  (export $point' "point" (type $point))
  (func (export "add") (param "a" s32) (param "b" s32) (result s32) (canon lift (core func $m "add")))
  (func (export "describe") (param "p" $point') (result (option string))
    (canon lift (core func $m "describe") (memory (core memory $m "mem")) (realloc (core func $m "realloc")))))
