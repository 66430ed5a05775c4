;; A Component Model script for `wippy-wasm wast`: every directive kind the
;; runner supports, on small components of our own.

(component definition $Adder
  (core module $M
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
  (core instance $m (instantiate $M))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $m "add"))))

(component instance $a $Adder)
(assert_return (invoke "add" (u32.const 2) (u32.const 40)) (u32.const 42))
(assert_return (invoke "add" (u32.const 0xffffffff) (u32.const 1)) (u32.const 0))

(component
  (core module $M
    (memory (export "mem") 1)
    (data (i32.const 16) "h\c3\a9")
    (func (export "s") (result i32)
      (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3)) (i32.const 0))
    (func (export "bad") (result i32) (i32.const 0xD800)))
  (core instance $m (instantiate $M))
  (func (export "s") (result string) (canon lift (core func $m "s") (memory (core memory $m "mem"))))
  (func (export "bad") (result char) (canon lift (core func $m "bad"))))
(assert_return (invoke "s") (str.const "hé"))
(assert_trap (invoke "bad") "invalid `char` bit pattern")

;; Reusing an index that does not exist is invalid.
(assert_invalid
  (component (core module $M) (core instance (instantiate 5)))
  "index out of bounds")

(assert_malformed
  (component quote "(core module $M (func (export \"f\") (result i32) i32.const))")
  "expected")

;; An import nobody provides cannot link.
(assert_unlinkable
  (component (import "missing" (func (param "x" u32))))
  "was not found")
