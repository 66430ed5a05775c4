;; `relay(target: string, input: string) -> result<string, string>`: calls
;; another registry function through `wippy:runtime/funcs` and returns what
;; it answered. Post-return resets the bump allocator.
(component
  (import "wippy:runtime/funcs@0.1.0" (instance $funcs
    (export "call-string" (func (param "target" string) (param "input" string) (result (result string (error string)))))))
  (alias export $funcs "call-string" (func $call-string))
  (core module $Libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (local.set $r (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $r) (local.get 3)))
      (local.get $r))
    (func (export "reset") (param i32) (global.set $next (i32.const 1024))))
  (core instance $libc (instantiate $Libc))
  (core func $call-string' (canon lower (func $call-string)
    (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "libc" "mem" (memory 1))
    (import "funcs" "call-string" (func $call (param i32 i32 i32 i32 i32)))
    ;; The lowered import writes result<string, string> (12 bytes) at 16.
    (func (export "relay") (param i32 i32 i32 i32) (result i32)
      (call $call (local.get 0) (local.get 1) (local.get 2) (local.get 3) (i32.const 16))
      (i32.const 16)))
  (core instance $m (instantiate $M
    (with "libc" (instance $libc))
    (with "funcs" (instance (export "call-string" (func $call-string'))))))
  (func (export "relay") (param "target" string) (param "input" string) (result (result string (error string)))
    (canon lift (core func $m "relay") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))
      (post-return (core func $libc "reset")))))
