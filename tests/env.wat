;; `env() -> list<tuple<string, string>>`: the guest's environment, as
;; wasi:cli/environment gives it.
(component
  (import "wasi:cli/environment@0.2.0" (instance $env
    (export "get-environment" (func (result (list (tuple string string)))))))
  (alias export $env "get-environment" (func $get))
  (core module $Libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (local.set $r (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $r) (local.get 3)))
      (local.get $r)))
  (core instance $libc (instantiate $Libc))
  (core func $get' (canon lower (func $get) (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "" "get" (func $get (param i32)))
    (func (export "env") (result i32) (call $get (i32.const 16)) (i32.const 16)))
  (core instance $m (instantiate $M (with "" (instance (export "get" (func $get'))))))
  (func (export "env") (result (list (tuple string string)))
    (canon lift (core func $m "env") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc")))))
