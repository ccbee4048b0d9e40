; Python tags. Based on tree-sitter-python's queries/tags.scm (MIT), with methods, type
; references, superclasses and import captures added for swarm-lsp.

(class_definition
  body: (block
    (function_definition name: (identifier) @name.definition.method) @definition.method))

(class_definition
  body: (block
    (decorated_definition
      definition: (function_definition name: (identifier) @name.definition.method) @definition.method)))

(class_definition
  name: (identifier) @name.definition.class) @definition.class

(function_definition
  name: (identifier) @name.definition.function) @definition.function

(module
  (expression_statement
    (assignment left: (identifier) @name.definition.constant) @definition.constant))

(call
  function: [
    (identifier) @name.reference.call
    (attribute attribute: (identifier) @name.reference.call)
  ]) @reference.call

(class_definition
  superclasses: (argument_list
    [
      (identifier) @name.reference.class
      (attribute attribute: (identifier) @name.reference.class)
    ])) @reference.class

(type
  [
    (identifier) @name.reference.type
    (attribute attribute: (identifier) @name.reference.type)
    (generic_type (identifier) @name.reference.type)
  ]) @reference.type

(decorator
  [
    (identifier) @name.reference.call
    (attribute attribute: (identifier) @name.reference.call)
  ]) @reference.call

(import_statement
  name: [
    (dotted_name) @name.import.module
    (aliased_import name: (dotted_name) @name.import.module)
  ]) @import

(import_from_statement
  module_name: [
    (dotted_name) @name.import.module
    (relative_import) @name.import.module
  ]) @import

(import_from_statement
  name: [
    (dotted_name (identifier) @name.import.name)
    (aliased_import name: (dotted_name (identifier) @name.import.name))
  ]) @import
