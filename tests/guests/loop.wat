;; Calls `h:loop` (itself) through funcs with its input and returns what
;; that call returned: a cycle only the depth limit ends.
(component
  (import "wippy:runtime/funcs@0.1.0" (instance $funcs
    (export "call-string" (func (param "target" string) (param "input" string) (result (result string (error string)))))))
  (alias export $funcs "call-string" (func $call-string))
  (core module $Libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (data (i32.const 256) "h:loop")
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (local.set $r (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $r) (local.get 3)))
      (local.get $r)))
  (core instance $libc (instantiate $Libc))
  (core func $call-string' (canon lower (func $call-string)
    (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "funcs" "call-string" (func $call (param i32 i32 i32 i32 i32)))
    (func (export "loop") (param i32 i32) (result i32)
      (call $call (i32.const 256) (i32.const 6) (local.get 0) (local.get 1) (i32.const 16))
      (i32.const 16)))
  (core instance $m (instantiate $M (with "funcs" (instance (export "call-string" (func $call-string'))))))
  (func (export "loop") (param "s" string) (result (result string (error string)))
    (canon lift (core func $m "loop") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc")))))
