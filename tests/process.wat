;; Process guests: `compute(a, b) -> a * b`, `boom()`, which traps, and
;; `half(n) -> result<u32, string>`, which fails on odd numbers.
(component
  (core module $M
    (memory (export "mem") 1)
    (data (i32.const 64) "odd number")
    (func (export "compute") (param i32 i32) (result i32) (i32.mul (local.get 0) (local.get 1)))
    (func (export "boom") unreachable)
    ;; result<u32, string> at 16: discriminant, then the payload.
    (func (export "half") (param $n i32) (result i32)
      (if (i32.and (local.get $n) (i32.const 1))
        (then
          (i32.store8 (i32.const 16) (i32.const 1))
          (i32.store (i32.const 20) (i32.const 64))
          (i32.store (i32.const 24) (i32.const 10)))
        (else
          (i32.store8 (i32.const 16) (i32.const 0))
          (i32.store (i32.const 20) (i32.shr_u (local.get $n) (i32.const 1)))))
      (i32.const 16)))
  (core instance $m (instantiate $M))
  (func (export "compute") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $m "compute")))
  (func (export "boom") (canon lift (core func $m "boom")))
  (func (export "half") (param "n" u32) (result (result u32 (error string)))
    (canon lift (core func $m "half") (memory (core memory $m "mem")))))
