; TypeScript tags. Based on tree-sitter-typescript's queries/tags.scm and
; tree-sitter-javascript's queries/tags.scm (both MIT), merged because the TypeScript
; grammar includes the JavaScript one; type references and imports added for swarm-lsp.

(method_definition
  name: [(property_identifier) (private_property_identifier)] @name.definition.method) @definition.method

(method_signature
  name: (property_identifier) @name.definition.method) @definition.method

(abstract_method_signature
  name: (property_identifier) @name.definition.method) @definition.method

[
  (class_declaration name: (type_identifier) @name.definition.class)
  (abstract_class_declaration name: (type_identifier) @name.definition.class)
  (class name: (type_identifier) @name.definition.class)
] @definition.class

(interface_declaration
  name: (type_identifier) @name.definition.interface) @definition.interface

(type_alias_declaration
  name: (type_identifier) @name.definition.type) @definition.type

(enum_declaration
  name: (identifier) @name.definition.enum) @definition.enum

(module
  name: [(identifier) (string)] @name.definition.module) @definition.module

(internal_module
  name: (identifier) @name.definition.module) @definition.module

[
  (function_declaration name: (identifier) @name.definition.function)
  (generator_function_declaration name: (identifier) @name.definition.function)
  (function_signature name: (identifier) @name.definition.function)
  (function_expression name: (identifier) @name.definition.function)
] @definition.function

(lexical_declaration
  (variable_declarator
    name: (identifier) @name.definition.function
    value: [(arrow_function) (function_expression)]) @definition.function)

(variable_declaration
  (variable_declarator
    name: (identifier) @name.definition.function
    value: [(arrow_function) (function_expression)]) @definition.function)

(program
  (lexical_declaration
    (variable_declarator name: (identifier) @name.definition.constant) @definition.constant))

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator name: (identifier) @name.definition.constant) @definition.constant)))

(call_expression
  function: (identifier) @name.reference.call
  (#not-eq? @name.reference.call "require")) @reference.call

(call_expression
  function: (member_expression property: (property_identifier) @name.reference.call)) @reference.call

(new_expression
  constructor: (identifier) @name.reference.class) @reference.class

(extends_clause value: (identifier) @name.reference.class) @reference.class

(implements_clause (type_identifier) @name.reference.implementation) @reference.implementation

(type_annotation (type_identifier) @name.reference.type) @reference.type

(generic_type name: (type_identifier) @name.reference.type) @reference.type

(import_statement
  source: (string (string_fragment) @name.import.module)) @import

(import_statement
  (import_clause
    [
      (identifier) @name.import.name
      (namespace_import (identifier) @name.import.name)
      (named_imports (import_specifier name: (identifier) @name.import.name))
    ])) @import

(call_expression
  function: (identifier) @_require
  arguments: (arguments . (string (string_fragment) @name.import.module))
  (#eq? @_require "require")) @import
