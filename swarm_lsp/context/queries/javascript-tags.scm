; JavaScript tags. Based on tree-sitter-javascript's queries/tags.scm (MIT), without its
; doc-comment predicates, with import/require captures added for swarm-lsp.

(method_definition
  name: [(property_identifier) (private_property_identifier)] @name.definition.method) @definition.method

[
  (class name: (_) @name.definition.class)
  (class_declaration name: (_) @name.definition.class)
] @definition.class

[
  (function_declaration name: (identifier) @name.definition.function)
  (generator_function_declaration name: (identifier) @name.definition.function)
  (function_expression name: (identifier) @name.definition.function)
  (generator_function name: (identifier) @name.definition.function)
] @definition.function

(lexical_declaration
  (variable_declarator
    name: (identifier) @name.definition.function
    value: [(arrow_function) (function_expression)]) @definition.function)

(variable_declaration
  (variable_declarator
    name: (identifier) @name.definition.function
    value: [(arrow_function) (function_expression)]) @definition.function)

(assignment_expression
  left: [
    (identifier) @name.definition.function
    (member_expression property: (property_identifier) @name.definition.function)
  ]
  right: [(arrow_function) (function_expression)]) @definition.function

(pair
  key: (property_identifier) @name.definition.function
  value: [(arrow_function) (function_expression)]) @definition.function

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
  constructor: [
    (identifier) @name.reference.class
    (member_expression property: (property_identifier) @name.reference.class)
  ]) @reference.class

(class_heritage (identifier) @name.reference.class) @reference.class

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
