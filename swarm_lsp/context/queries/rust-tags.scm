; Rust tags. Based on tree-sitter-rust's queries/tags.scm (MIT); constants, trait method
; signatures, scoped calls, type references and `use` imports added for swarm-lsp.

(struct_item name: (type_identifier) @name.definition.class) @definition.class

(enum_item name: (type_identifier) @name.definition.class) @definition.class

(union_item name: (type_identifier) @name.definition.class) @definition.class

(type_item name: (type_identifier) @name.definition.type) @definition.type

(declaration_list
  (function_item name: (identifier) @name.definition.method) @definition.method)

(declaration_list
  (function_signature_item name: (identifier) @name.definition.method) @definition.method)

(function_item name: (identifier) @name.definition.function) @definition.function

(function_signature_item name: (identifier) @name.definition.function) @definition.function

(trait_item name: (type_identifier) @name.definition.interface) @definition.interface

(mod_item name: (identifier) @name.definition.module) @definition.module

(macro_definition name: (identifier) @name.definition.macro) @definition.macro

(const_item name: (identifier) @name.definition.constant) @definition.constant

(static_item name: (identifier) @name.definition.constant) @definition.constant

(call_expression
  function: [
    (identifier) @name.reference.call
    (field_expression field: (field_identifier) @name.reference.call)
    (scoped_identifier name: (identifier) @name.reference.call)
  ]) @reference.call

(macro_invocation macro: (identifier) @name.reference.call) @reference.call

(impl_item trait: (type_identifier) @name.reference.implementation) @reference.implementation

(impl_item type: (type_identifier) @name.reference.implementation !trait) @reference.implementation

((type_identifier) @name.reference.type) @reference.type

(use_declaration
  argument: [
    (identifier) @name.import.name
    (scoped_identifier name: (identifier) @name.import.name)
    (use_as_clause alias: (identifier) @name.import.name)
    (scoped_use_list list: (use_list [
      (identifier) @name.import.name
      (scoped_identifier name: (identifier) @name.import.name)
    ]))
    (use_list [
      (identifier) @name.import.name
      (scoped_identifier name: (identifier) @name.import.name)
    ])
  ]) @import

(use_declaration
  argument: [
    (scoped_identifier path: (_) @name.import.module)
    (scoped_use_list path: (_) @name.import.module)
  ]) @import
